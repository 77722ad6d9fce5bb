//! No input makes `lint_source` panic or overflow the stack: mutations of real examples,
//! and pathological nesting, in every format. (The `lint_source` fuzz target explores
//! further; this runs on stable in every `cargo test`.)

use std::path::Path;

use writ_lint::{Config, lint_source};

const NAMES: [&str; 5] = ["f.tf", "f.yaml", "f.json", "f.template", "f.toml"];

fn config() -> Config {
    Config {
        allow_layer_accounts: vec!["123456789012".into()],
    }
}

fn lint_everywhere(text: &str) {
    for name in NAMES {
        let r = lint_source(name, text, &config());
        for f in &r.findings {
            assert!(f.line >= 1 && f.column >= 1, "{name}: {f:?}");
            assert!(writ_lint::rule(f.rule).is_some(), "{f:?}");
        }
    }
}

/// Every fenced block of the rule pages, and the seed fixtures.
fn corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        root.join("../../docs/rules"),
        root.join("tests/fixtures/seed003"),
    ] {
        for e in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let mut block = None::<String>;
            for line in text.lines() {
                match block.as_mut() {
                    Some(b) if line.starts_with("```") => {
                        out.push(std::mem::take(b));
                        block = None;
                    }
                    Some(b) => {
                        b.push_str(line);
                        b.push('\n');
                    }
                    None if line.starts_with("```") => block = Some(String::new()),
                    None => {}
                }
            }
            out.push(text);
        }
    }
    out
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    "\n",
    " ",
    "-",
    "!Ref ",
    "!GetAtt ",
    "*",
    "${",
    "<<EOF\n",
    "\nEOF\n",
    "local.",
    "var.",
    "&a ",
    "*a",
    "#",
    "//",
    "writ:ignore ",
    "\u{e9}",
    "\t",
    "=",
    ",",
    "'",
    "Statement",
    "Resources",
    "AWS::Lambda::Function",
    "Type",
    "jsonencode(",
    ")",
];

#[test]
fn mutated_examples_never_panic() {
    let corpus = corpus();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..1500 {
        let base = &corpus[rng.below(corpus.len())];
        let mut chars: Vec<char> = base.chars().collect();
        for _ in 0..=rng.below(6) {
            let at = rng.below(chars.len() + 1);
            match rng.below(4) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 => chars.truncate(at),
                _ => {
                    let piece = PIECES[rng.below(PIECES.len())];
                    for (k, c) in piece.chars().enumerate() {
                        chars.insert((at + k).min(chars.len()), c);
                    }
                }
            }
        }
        let text: String = chars.into_iter().collect();
        lint_everywhere(&text);
    }
}

#[test]
fn deep_nesting_is_refused_not_recursed() {
    for open in ["[", "{", "(", "{\"a\":", "a: [", "- ", "x = [", "!Ref {"] {
        let text = open.repeat(50_000);
        lint_everywhere(&text);
    }
    let yaml_nested: String = (0..3000)
        .map(|i| format!("{}a:\n", " ".repeat(i)))
        .collect();
    lint_everywhere(&yaml_nested);
    let locals: String = (0..200)
        .map(|i| format!("locals {{\n  l{i} = local.l{}\n}}\n", i + 1))
        .collect();
    lint_everywhere(&format!("{locals}locals {{\n  l200 = local.l0\n}}\n"));
}
