//! Feeds arbitrary text to `writ_lint::deps::osv::Advisory::parse` (an OSV record from
//! a downloaded database, so untrusted) and, when it reads, matches versions taken from
//! the same input against it in every ecosystem; also checks that version comparison
//! is antisymmetric. Nothing may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_lint::deps::Ecosystem;
use writ_lint::deps::osv::Advisory;
use writ_lint::deps::version::Version;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let words: Vec<&str> = text.split_whitespace().take(4).collect();
    for eco in Ecosystem::ALL {
        for a in &words {
            for b in &words {
                if let (Some(x), Some(y)) = (Version::parse(eco, a), Version::parse(eco, b)) {
                    assert_eq!(
                        x.compare(&y).map(std::cmp::Ordering::reverse),
                        y.compare(&x),
                        "{a} {b}"
                    );
                }
            }
        }
    }
    if let Ok(Some(adv)) = Advisory::parse(text) {
        for eco in Ecosystem::ALL {
            for a in &adv.affected {
                for w in &words {
                    let _ = adv.affects(eco, &a.name, w);
                }
                for v in &a.versions {
                    let _ = adv.affects(eco, &a.name, v);
                }
            }
        }
    }
});
