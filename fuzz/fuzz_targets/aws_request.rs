//! Fuzzes the decoding of requests to writ's AWS-compatible endpoint: the Query protocol's
//! form bodies (STS), JSON 1.1 bodies (Secrets Manager, SSM: no key given twice, unknown
//! fields refused by name), SSM parameter names and session tokens. Each must refuse or
//! decode, never panic; a session token the fuzzer makes without the master key must
//! never open.
//!
//! The first byte picks the decoder; the rest is its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_server::aws::{credentials, protocol, ssm};
use writ_server::master_key::MasterKey;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)]
struct Get {
    secret_id: String,
    #[serde(default)]
    version_id: Option<String>,
    #[serde(default)]
    version_stage: Option<String>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            if let Ok(params) = protocol::decode_form(rest) {
                for (k, v) in &params {
                    assert!(!k.is_empty());
                    let _ = protocol::xml_escape(v);
                }
            }
        }
        1 => {
            let _ = protocol::decode_json::<serde_json::Value>(rest);
        }
        2 => {
            let _ = protocol::decode_json::<Get>(rest);
        }
        3 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Ok(name) = ssm::secret_name(text) {
                    assert!(!name.starts_with('/'));
                }
                let _ = ssm::open_page_token(text);
            }
        }
        _ => {
            let key = MasterKey::from_bytes(&[7u8; 32]).expect("a 32-byte key");
            if let Ok(text) = std::str::from_utf8(rest) {
                let token = format!("{}{text}", credentials::TOKEN_PREFIX);
                assert!(credentials::open(&key, &token).is_none());
                assert!(credentials::open(&key, text).is_none());
            }
        }
    }
});
