//! Fuzzes `writ_policy::diff` with two arbitrary policy texts (split at the first NUL
//! byte): no panic, and every witness it reports is decided as reported by a policy set
//! built here, independently of the diff's own check, and lies in its finding's region.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_policy::diff::{Change, DiffScope, diff};
use writ_policy::{CompiledPolicy, ParseOptions, Policy, PolicyKind, PolicySet};

fn set(kind: PolicyKind, p: &Policy) -> PolicySet {
    let mut s = PolicySet::new();
    if kind == PolicyKind::PermissionsBoundary {
        let all = writ_policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            &ParseOptions::new(PolicyKind::Identity),
        )
        .into_result()
        .expect("valid");
        s.add(CompiledPolicy::new("all", PolicyKind::Identity, &all).expect("compiles"));
    }
    s.add(CompiledPolicy::new("p", kind, p).expect("a parsed policy compiles"));
    s
}

fuzz_target!(|data: &[u8]| {
    let (a, b) = match data.iter().position(|&x| x == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..data.len() / 2], &data[data.len() / 2..]),
    };
    for kind in [
        PolicyKind::Identity,
        PolicyKind::Resource,
        PolicyKind::PermissionsBoundary,
    ] {
        let opts = ParseOptions::new(kind);
        let (Some(old), Some(new)) = (
            writ_policy::parse_bytes(a, &opts).policy,
            writ_policy::parse_bytes(b, &opts).policy,
        ) else {
            continue;
        };
        let Ok(d) = diff(
            &[("old", &old)],
            &[("new", &new)],
            kind,
            &DiffScope::default(),
        ) else {
            // Refused as too complex: an answer, not a failure.
            continue;
        };
        let (old_set, new_set) = (set(kind, &old), set(kind, &new));
        for f in d.added.iter().chain(&d.removed) {
            assert!(f.witness.is_some() || f.unverified.is_some());
            let Some(w) = &f.witness else { continue };
            let req = w.request();
            let (o, n) = (old_set.evaluate(&req), new_set.evaluate(&req));
            assert_eq!(
                (o.outcome, n.outcome),
                (w.old, w.new),
                "witness decided otherwise"
            );
            match f.change {
                Change::Added => assert!(n.is_allowed() && !o.is_allowed()),
                Change::Removed => assert!(o.is_allowed() && !n.is_allowed()),
            }
            assert!(f.covers(w.principal.as_ref(), &w.action, &w.resource));
        }
    }
});
