//! `writ completions SHELL` and `writ man`: shell completions and manual pages generated
//! from the CLI definition itself, so they never drift from what the binary accepts.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `writ completions`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  writ completions bash > ~/.local/share/bash-completion/completions/writ
  writ completions zsh > \"${fpath[1]}/_writ\"
  writ completions fish > ~/.config/fish/completions/writ.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Arguments of `writ man`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  writ man | man -l -
  writ man --out-dir ~/.local/share/man/man1    # writ.1, writ-dev.1, writ-fn.1, ...")]
pub struct ManArgs {
    /// Write one page per command (writ.1, writ-dev.1, writ-fn-register.1, ...) into this
    /// directory instead of printing the top-level page.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell`, for the CLI `cli` describes.
pub fn completions(args: CompletionsArgs, mut cli: clap::Command) -> Result<ExitCode, String> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "writ", &mut out);
    write_stdout(&out)
}

/// Prints the manual page of `cli`, or writes one per command into `--out-dir`.
pub fn man(args: ManArgs, cli: clap::Command) -> Result<ExitCode, String> {
    match args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("{}: cannot create the directory: {e}", dir.display()))?;
            clap_mangen::generate_to(cli, &dir)
                .map_err(|e| format!("{}: cannot write the manual pages: {e}", dir.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cli)
                .render(&mut out)
                .map_err(|e| format!("rendering the manual page: {e}"))?;
            write_stdout(&out)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<ExitCode, String> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // A reader that stopped reading (`| head`) is no error of writ's.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(format!("writing to stdout: {e}")),
    }
}
