//! Feeds arbitrary text to `writ_lint::lint_source` as every format it reads (Terraform,
//! Terraform JSON, YAML, JSON, and `.template`, which picks by content), then renders the findings in
//! every output format. Nothing may panic; every finding must have a position, a rule
//! that exists, and a message; SARIF and JSON output must be valid JSON.

#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_lint::render::{self, Outcome};
use writ_lint::{Config, Severity, lint_source, rule};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = Config {
        allow_layer_accounts: vec!["123456789012".into()],
    };
    let mut reports = Vec::new();
    for name in [
        "f.tf",
        "f.tf.json",
        "f.yaml",
        "f.json",
        "f.template",
        "f.toml",
    ] {
        let report = lint_source(name, text, &config);
        for f in &report.findings {
            assert!(f.line >= 1 && f.column >= 1, "{f:?}");
            assert!(rule(f.rule).is_some(), "{f:?}");
            assert!(!f.message.is_empty());
        }
        reports.push(report);
    }
    let outcome = Outcome::collect(&reports, None, Severity::Low);
    let _ = render::text(&outcome);
    let _ = render::junit(&outcome);
    for doc in [render::json(&outcome), render::sarif(&outcome)] {
        serde_json::from_str::<serde_json::Value>(&doc).expect("valid JSON");
    }
});
