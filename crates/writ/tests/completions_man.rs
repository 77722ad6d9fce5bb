//! `writ completions` and `writ man`: generated from the CLI definition, they name every
//! top-level command, and `writ man --out-dir` writes one page per command.

use std::process::Command;

/// Every top-level command, as `writ --help` lists them.
const COMMANDS: &[&str] = &[
    "policy",
    "server",
    "fn",
    "token",
    "revoke",
    "ca",
    "audit",
    "intention",
    "secret",
    "agent",
    "gateway",
    "operator",
    "dev",
    "lint",
    "completions",
    "man",
];

fn writ(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(args)
        .output()
        .expect("run writ");
    assert!(
        out.status.success(),
        "writ {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn bash_completion_offers_every_top_level_command() {
    let script = writ(&["completions", "bash"]);
    assert!(
        script.contains("complete -F _writ"),
        "not a bash completion:\n{script}"
    );
    // The list offered after `writ `: one line holding every command name.
    let offered = script
        .lines()
        .find(|l| l.contains("opts=\"") && l.contains(" dev ") && l.contains(" lint "))
        .unwrap_or_else(|| panic!("no top-level word list in:\n{script}"));
    for command in COMMANDS {
        assert!(
            offered.split_whitespace().any(|w| w == *command),
            "`writ {command}` is not offered: {offered}"
        );
    }
    // Subcommands get their own cases, with their own flags.
    assert!(
        script.contains("writ__subcmd__dev)"),
        "no case for `writ dev`"
    );
    assert!(
        script.contains("--data-dir"),
        "`writ dev --data-dir` is not completed"
    );
}

#[test]
fn zsh_and_fish_completions_know_the_commands_too() {
    let zsh = writ(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef writ"), "{zsh}");
    let fish = writ(&["completions", "fish"]);
    for command in ["dev", "server", "gateway", "lint"] {
        assert!(zsh.contains(&format!("'{command}:")), "zsh lacks {command}");
        assert!(
            fish.contains(&format!("-a \"{command}\"")),
            "fish lacks {command}"
        );
    }
}

#[test]
fn the_man_page_names_each_command_and_its_own_page() {
    let page = writ(&["man"]);
    assert!(page.contains(".TH writ 1"), "not a man page:\n{page}");
    for command in COMMANDS {
        // roff escapes the hyphen: writ\-dev(1).
        assert!(
            page.contains(&format!("writ\\-{command}(1)")),
            "the page does not name writ-{command}(1):\n{page}"
        );
    }
}

#[test]
fn man_out_dir_writes_a_page_per_command() {
    let dir = std::env::temp_dir().join(format!("writ-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    writ(&["man", "--out-dir", dir.to_str().unwrap()]);
    let pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let has = |name: &str| pages.iter().any(|p| p == name);
    assert!(has("writ.1"), "{pages:?}");
    for command in COMMANDS {
        assert!(
            has(&format!("writ-{command}.1")),
            "no writ-{command}.1 in {pages:?}"
        );
    }
    // Nested commands get pages too, and the dev page documents its flags.
    assert!(has("writ-policy-validate.1"), "{pages:?}");
    let dev = std::fs::read_to_string(dir.join("writ-dev.1")).unwrap();
    assert!(dev.contains("data\\-dir"), "{dev}");
    std::fs::remove_dir_all(&dir).unwrap();
}
