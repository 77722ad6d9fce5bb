//! Version ordering per ecosystem, as OSV ranges need it: SemVer 2.0 precedence for npm,
//! crates.io and Go (Go versions carry a `v` prefix), and PEP 440 for PyPI.
//!
//! SemVer is the `semver` crate's (build metadata ignored, as SemVer 2.0 says).
//! PEP 440 is implemented here: the `pep440_rs` crate would bring a dozen transitive
//! dependencies for what is a small, well-specified ordering.

use std::cmp::Ordering;

use super::Ecosystem;

/// A version of some ecosystem, parsed for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// SemVer 2.0 (npm, crates.io, Go).
    Semver(semver::Version),
    /// PEP 440 (PyPI).
    Pep440(Pep440),
}

impl Version {
    /// Parses `text` as a version of `eco`; `None` when it is not one.
    pub fn parse(eco: Ecosystem, text: &str) -> Option<Version> {
        match eco {
            Ecosystem::PyPI => Pep440::parse(text).map(Version::Pep440),
            Ecosystem::Npm | Ecosystem::CratesIo | Ecosystem::Go => {
                parse_semver(text).map(Version::Semver)
            }
        }
    }

    /// Parses `text` as SemVer 2.0, whatever the ecosystem (OSV's `SEMVER` range type).
    pub fn parse_semver(text: &str) -> Option<Version> {
        parse_semver(text).map(Version::Semver)
    }

    /// Compares two versions of one scheme; `None` across schemes.
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        match (self, other) {
            (Version::Semver(a), Version::Semver(b)) => Some(a.cmp_precedence(b)),
            (Version::Pep440(a), Version::Pep440(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// SemVer 2.0, tolerating a leading `v` (Go) or `=` (npm).
fn parse_semver(text: &str) -> Option<semver::Version> {
    let t = text.trim();
    let t = t.strip_prefix('=').unwrap_or(t).trim();
    let t = t.strip_prefix('v').unwrap_or(t);
    semver::Version::parse(t).ok()
}

/// The kind of a PEP 440 pre-release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PreKind {
    /// `a`, `alpha`.
    Alpha,
    /// `b`, `beta`.
    Beta,
    /// `rc`, `c`, `pre`, `preview`.
    Rc,
}

/// A segment of a PEP 440 local version label: numbers sort above strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LocalPart {
    /// A string segment, lowercased.
    Str(String),
    /// A numeric segment.
    Num(u64),
}

impl Ord for LocalPart {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (LocalPart::Num(a), LocalPart::Num(b)) => a.cmp(b),
            (LocalPart::Str(a), LocalPart::Str(b)) => a.cmp(b),
            (LocalPart::Num(_), LocalPart::Str(_)) => Ordering::Greater,
            (LocalPart::Str(_), LocalPart::Num(_)) => Ordering::Less,
        }
    }
}

impl PartialOrd for LocalPart {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A PEP 440 version, normalised: `1!2.0.0rc1.post2.dev3+local.7`. Equality is PEP 440's
/// (`1.0 == 1.0.0`).
#[derive(Debug, Clone)]
pub struct Pep440 {
    /// The epoch (`N!`), 0 when absent.
    pub epoch: u64,
    /// The release segments, as written (trailing zeros are ignored in comparisons).
    pub release: Vec<u64>,
    /// The pre-release, if any.
    pub pre: Option<(PreKind, u64)>,
    /// The post-release number, if any.
    pub post: Option<u64>,
    /// The development release number, if any.
    pub dev: Option<u64>,
    /// The local version label's segments (empty when absent).
    pub local: Vec<LocalPart>,
}

/// A small cursor over a lowercased version string.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn sep(&mut self) -> bool {
        if matches!(self.peek(), Some(b'.' | b'-' | b'_')) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn number(&mut self) -> Option<u64> {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
        if start == self.i {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
}

impl Pep440 {
    /// Parses a version in any of the spellings PEP 440 normalises (case, `v` prefix,
    /// `alpha`/`beta`/`c`/`pre`/`preview`, `-`/`_`/`.` separators, implicit numbers,
    /// `1.0-1` post releases). `None` when it is not a PEP 440 version.
    pub fn parse(text: &str) -> Option<Pep440> {
        let lower = text.trim().to_ascii_lowercase();
        let (main, local) = match lower.split_once('+') {
            Some((m, l)) => (m, Some(l)),
            None => (lower.as_str(), None),
        };
        let mut c = Cursor {
            s: main.as_bytes(),
            i: 0,
        };
        c.eat("v");
        let mut epoch = 0;
        let first = c.number()?;
        let mut release = vec![first];
        if c.eat("!") {
            epoch = first;
            release = vec![c.number()?];
        }
        while c.peek() == Some(b'.') && c.s.get(c.i + 1).is_some_and(u8::is_ascii_digit) {
            c.i += 1;
            release.push(c.number()?);
        }
        // Pre-release.
        let mut pre = None;
        let save = c.i;
        c.sep();
        let kind = [
            ("alpha", PreKind::Alpha),
            ("beta", PreKind::Beta),
            ("preview", PreKind::Rc),
            ("pre", PreKind::Rc),
            ("rc", PreKind::Rc),
            ("a", PreKind::Alpha),
            ("b", PreKind::Beta),
            ("c", PreKind::Rc),
        ]
        .into_iter()
        .find(|(lit, _)| c.eat(lit))
        .map(|(_, k)| k);
        match kind {
            Some(k) => {
                let at = c.i;
                c.sep();
                let n = match c.number() {
                    Some(n) => n,
                    None => {
                        c.i = at;
                        0
                    }
                };
                pre = Some((k, n));
            }
            None => c.i = save,
        }
        // Post-release.
        let mut post = None;
        let save = c.i;
        if c.peek() == Some(b'-') && c.s.get(c.i + 1).is_some_and(u8::is_ascii_digit) {
            c.i += 1;
            post = c.number();
        } else {
            c.sep();
            if c.eat("post") || c.eat("rev") || c.eat("r") {
                let at = c.i;
                c.sep();
                post = Some(match c.number() {
                    Some(n) => n,
                    None => {
                        c.i = at;
                        0
                    }
                });
            } else {
                c.i = save;
            }
        }
        // Development release.
        let mut dev = None;
        let save = c.i;
        c.sep();
        if c.eat("dev") {
            let at = c.i;
            c.sep();
            dev = Some(match c.number() {
                Some(n) => n,
                None => {
                    c.i = at;
                    0
                }
            });
        } else {
            c.i = save;
        }
        if c.i != c.s.len() {
            return None;
        }
        let local = match local {
            None => Vec::new(),
            Some(l) => {
                let mut parts = Vec::new();
                for seg in l.split(['.', '-', '_']) {
                    if seg.is_empty() || !seg.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        return None;
                    }
                    parts.push(match seg.parse::<u64>() {
                        Ok(n) if seg.bytes().all(|b| b.is_ascii_digit()) => LocalPart::Num(n),
                        _ => LocalPart::Str(seg.to_string()),
                    });
                }
                parts
            }
        };
        Some(Pep440 {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// The release without trailing zeros, as compared.
    fn release_key(&self) -> &[u64] {
        let mut n = self.release.len();
        while n > 1 && self.release[n - 1] == 0 {
            n -= 1;
        }
        &self.release[..n]
    }
}

/// PEP 440's ordering keys (the same as `packaging.version`): a dev-only release sorts
/// before the pre-releases of its release, a release without pre-release after them; no
/// post-release before any; no dev release after any.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum PreKey {
    DevOnly,
    Pre(PreKind, u64),
    Final,
}

impl Ord for Pep440 {
    fn cmp(&self, other: &Self) -> Ordering {
        let pre = |v: &Pep440| match v.pre {
            Some((k, n)) => PreKey::Pre(k, n),
            None if v.post.is_none() && v.dev.is_some() => PreKey::DevOnly,
            None => PreKey::Final,
        };
        // `None` sorts first for post (no post-release < any) and local; last for dev.
        let dev = |v: &Pep440| v.dev.map_or((1, 0), |d| (0, d));
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| self.release_key().cmp(other.release_key()))
            .then_with(|| pre(self).cmp(&pre(other)))
            .then_with(|| self.post.cmp(&other.post))
            .then_with(|| dev(self).cmp(&dev(other)))
            .then_with(|| self.local.cmp(&other.local))
    }
}

impl PartialEq for Pep440 {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pep440 {}

impl PartialOrd for Pep440 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Pep440 {
    /// The normalised form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}!", self.epoch)?;
        }
        let rel: Vec<String> = self.release.iter().map(u64::to_string).collect();
        f.write_str(&rel.join("."))?;
        if let Some((k, n)) = self.pre {
            let k = match k {
                PreKind::Alpha => "a",
                PreKind::Beta => "b",
                PreKind::Rc => "rc",
            };
            write!(f, "{k}{n}")?;
        }
        if let Some(p) = self.post {
            write!(f, ".post{p}")?;
        }
        if let Some(d) = self.dev {
            write!(f, ".dev{d}")?;
        }
        if !self.local.is_empty() {
            let parts: Vec<String> = self
                .local
                .iter()
                .map(|p| match p {
                    LocalPart::Num(n) => n.to_string(),
                    LocalPart::Str(s) => s.clone(),
                })
                .collect();
            write!(f, "+{}", parts.join("."))?;
        }
        Ok(())
    }
}

/// A PyPI project name normalised per PEP 503: lowercase, runs of `-`, `_` and `.`
/// replaced by one `-`.
pub fn normalize_pypi_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for ch in name.trim().chars() {
        if matches!(ch, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(ch.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> Pep440 {
        Pep440::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    /// PEP 440's own example of the ordering, ascending.
    const ORDERED: &[&str] = &[
        "1.0.dev456",
        "1.0a1",
        "1.0a2.dev456",
        "1.0a12.dev456",
        "1.0a12",
        "1.0b1.dev456",
        "1.0b2",
        "1.0b2.post345.dev456",
        "1.0b2.post345",
        "1.0rc1.dev456",
        "1.0rc1",
        "1.0",
        "1.0+abc.5",
        "1.0+abc.7",
        "1.0+5",
        "1.0.post456.dev34",
        "1.0.post456",
        "1.0.15",
        "1.1.dev1",
        "2!0.1",
    ];

    #[test]
    fn pep440_orders_as_the_pep_example() {
        for w in ORDERED.windows(2) {
            assert_eq!(v(w[0]).cmp(&v(w[1])), Ordering::Less, "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn pep440_normalises_spellings() {
        for (a, b) in [
            ("1.0", "1.0.0"),
            ("1.0", "v1.0"),
            ("1.0alpha1", "1.0a1"),
            ("1.0-beta.2", "1.0b2"),
            ("1.0c1", "1.0rc1"),
            ("1.0preview1", "1.0rc1"),
            ("1.0-1", "1.0.post1"),
            ("1.0.post", "1.0.post0"),
            ("1.0-r4", "1.0.post4"),
            ("1.0.dev", "1.0.dev0"),
            ("1.0RC1", "1.0rc1"),
            ("1.0a", "1.0a0"),
        ] {
            assert_eq!(v(a).cmp(&v(b)), Ordering::Equal, "{a} == {b}");
        }
        for bad in ["", "abc", "1.0+", "1.0 junk", "1..0", "1.0+a..b", "1.0.x"] {
            assert_eq!(Pep440::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn pypi_names_normalise_per_pep503() {
        assert_eq!(normalize_pypi_name("Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize_pypi_name("FRIENDLY__bard"), "friendly-bard");
        assert_eq!(normalize_pypi_name("friendly.-_bard"), "friendly-bard");
        assert_eq!(normalize_pypi_name("requests"), "requests");
    }

    #[test]
    fn semver_ignores_build_metadata_and_takes_go_prefixes() {
        let a = Version::parse(Ecosystem::Go, "v2.0.0+incompatible").unwrap();
        let b = Version::parse(Ecosystem::Go, "v2.0.0").unwrap();
        assert_eq!(a.compare(&b), Some(Ordering::Equal));
        let pseudo = Version::parse(Ecosystem::Go, "v0.0.0-20210711020723-a769d52b0f37").unwrap();
        let rel = Version::parse(Ecosystem::Go, "v0.0.1").unwrap();
        assert_eq!(pseudo.compare(&rel), Some(Ordering::Less));
        assert!(Version::parse(Ecosystem::Npm, "not-a-version").is_none());
    }

    fn arb_pep440() -> impl Strategy<Value = Pep440> {
        (
            0u64..3,
            proptest::collection::vec(0u64..4, 1..4),
            proptest::option::of((0u8..3, 0u64..3)),
            proptest::option::of(0u64..3),
            proptest::option::of(0u64..3),
            proptest::collection::vec(
                prop_oneof![
                    (0u64..3).prop_map(LocalPart::Num),
                    "[a-c]{1,2}".prop_map(LocalPart::Str)
                ],
                0..3,
            ),
        )
            .prop_map(|(epoch, release, pre, post, dev, local)| Pep440 {
                epoch,
                release,
                pre: pre.map(|(k, n)| {
                    (
                        [PreKind::Alpha, PreKind::Beta, PreKind::Rc][usize::from(k)],
                        n,
                    )
                }),
                post,
                dev,
                local,
            })
    }

    proptest! {
        #[test]
        fn pep440_display_parses_back(a in arb_pep440()) {
            let back = Pep440::parse(&a.to_string()).unwrap();
            prop_assert_eq!(back.cmp(&a), Ordering::Equal);
            prop_assert_eq!(back, a);
        }

        #[test]
        fn pep440_order_is_total_and_transitive(a in arb_pep440(), b in arb_pep440(), c in arb_pep440()) {
            prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
            if a <= b && b <= c {
                prop_assert!(a <= c);
            }
            let mut padded = a.clone();
            padded.release.push(0);
            prop_assert_eq!(padded.cmp(&a), Ordering::Equal);
        }

        #[test]
        fn pep440_parse_never_panics(s in "\\PC{0,24}") {
            let _ = Pep440::parse(&s);
        }
    }
}
