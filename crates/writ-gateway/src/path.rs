//! Request paths the gateway lets through. Routes and intentions match a path literally,
//! and an upstream may unescape and normalise it before routing: a path that it could
//! read as another path than the one authorized is refused, not guessed at.

/// Refuses paths an upstream could read as another path than the one authorized: dot
/// segments, empty segments, backslashes, `;` path parameters, escapes of characters that
/// need none (letters, digits, `- . _ ~`) or of `/`, `\`, `;` and NUL, and double escapes
/// (`%25` and two hex digits), which an upstream that unescapes twice reads as one of those.
/// (hyper refuses control characters in a request's path; they are refused here too.)
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("path {path:?}: must start with /"));
    }
    if path.contains("//") || path.contains('\\') {
        return Err(format!(
            "path {path:?}: empty segments and backslashes are refused"
        ));
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(format!("path {path:?}: dot segments are refused"));
    }
    if path.contains(';') {
        return Err(format!(
            "path {path:?}: path parameters (;) are refused: some servers drop them before routing"
        ));
    }
    let bytes = path.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'%' {
            if b.is_ascii_control() {
                return Err(format!("path {path:?}: control characters are refused"));
            }
            continue;
        }
        let Some(c) = hex_pair(bytes.get(i + 1..i + 3)) else {
            return Err(format!("path {path:?}: a % not followed by two hex digits"));
        };
        // Three ASCII bytes.
        let escape = &path[i..i + 3];
        match c {
            c if c.is_ascii_alphanumeric() || b"-._~/\\\0".contains(&c) => {
                return Err(format!(
                    "path {path:?}: {escape:?} spells {:?} another way; send it unescaped",
                    c as char
                ));
            }
            b';' => {
                return Err(format!(
                    "path {path:?}: {escape:?} is an escaped path parameter (;), refused as ; is"
                ));
            }
            b'%' if hex_pair(bytes.get(i + 3..i + 5)).is_some() => {
                return Err(format!(
                    "path {path:?}: {:?} is escaped twice: an upstream that unescapes twice reads another path",
                    &path[i..i + 5]
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The byte two hex digits spell, if `pair` is two hex digits.
fn hex_pair(pair: Option<&[u8]>) -> Option<u8> {
    let digit = |d: u8| char::from(d).to_digit(16);
    match pair? {
        &[hi, lo] => Some((digit(hi)? * 16 + digit(lo)?) as u8),
        _ => None,
    }
}

/// What [`check_path`] guarantees, as a plain model sharing none of its code, for tests
/// and fuzzing: every way an upstream might read `path` (as sent, unescaped once, and
/// unescaped twice) starts with `/`, has as many slashes as `path` (no escaped ones), and
/// holds nothing a server normalises or cuts before routing: no `.` or `..` segment, no
/// empty segment but a trailing one, no `\`, `;` or NUL. Every path `check_path` accepts
/// passes; it refuses some that pass too (`%41`, another spelling of `A`).
pub fn upstream_reads_it_as_sent(path: &str) -> bool {
    let sent = path.as_bytes().to_vec();
    let once = unescape(&sent);
    let twice = unescape(&once);
    let slashes = |r: &[u8]| r.iter().filter(|&&b| b == b'/').count();
    [&sent, &once, &twice].into_iter().all(|reading| {
        reading.first() == Some(&b'/')
            && slashes(reading) == slashes(&sent)
            && !reading.iter().any(|b| matches!(b, b'\\' | b';' | 0))
            && !reading.windows(2).any(|w| w == b"//")
            && !reading
                .split(|&b| b == b'/')
                .any(|segment| segment == b"." || segment == b"..")
    })
}

/// `%XX` replaced by its byte wherever XX are two hex digits; anything else kept.
fn unescape(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hex = |at: usize| text.get(at).and_then(|&d| char::from(d).to_digit(16));
        match (text[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (other, _, _) => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paths_that_could_mean_another_path_are_refused() {
        for ok in [
            "/q%3F",
            "/",
            "/pay/charge",
            "/pay/charge/",
            "/pay/charge.json",
            "/a%20b",
            "/x/.well-known/y",
            "/100%25",
            "/50%25off",
            "/%25zz",
        ] {
            check_path(ok).unwrap();
            assert!(upstream_reads_it_as_sent(ok), "{ok}");
        }
        for bad in [
            "/pay/../admin",
            "/pay/./charge",
            "/pay/..",
            "//pay",
            "/pay//charge",
            "/pay/%2e%2e/admin",
            "/pay/%2E%2e/admin",
            "/pay%2fadmin",
            "/pay%5cadmin",
            "/pay\\admin",
            "/pay%00",
            "pay",
            "/public/..;/admin",
            "/public/..%3b/admin",
            "/public/..%3B/admin",
            "/pay/%252e%252e/admin",
            "/pay%252fadmin",
            "/pay%2525",
            "/%61pi/x",
            "/a%7e",
            "/bad%zz",
            "/bad%4",
            "/bad%",
            "/é%",
            "/%aé",
            "/%+5",
            "/a\0b",
            "/a\tb",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_refusal_says_which_escape() {
        let why = check_path("/pay/%252e%252e/admin").unwrap_err();
        assert!(why.contains("\"%252e\" is escaped twice"), "{why}");
        let why = check_path("/public/..%3b/admin").unwrap_err();
        assert!(
            why.contains("\"%3b\" is an escaped path parameter"),
            "{why}"
        );
        let why = check_path("/bad%4").unwrap_err();
        assert!(why.contains("a % not followed by two hex digits"), "{why}");
    }

    #[test]
    fn the_model_sees_what_an_upstream_would() {
        assert!(!upstream_reads_it_as_sent("/a/%252e%252e/b"));
        assert!(!upstream_reads_it_as_sent("/a/..%3b/b"));
        assert!(!upstream_reads_it_as_sent("/a%2fb"));
        assert!(!upstream_reads_it_as_sent("/a%252Fb"));
        assert!(upstream_reads_it_as_sent("/a%20b/"));
    }

    /// Pieces paths that upstreams misread are made of.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "/", ".", "..", "%", "2", "5", "e", "E", "f", "F", "3", "b", "B", "c", "0", ";", "\\",
            "x", "%25", "%2e", "%2f", "%3b", "%5c", "%00", "%20", "é",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// Every path the gateway lets through reads the same to an upstream however many
        /// times (up to two) it unescapes it.
        #[test]
        fn an_accepted_path_reads_as_sent(pieces in prop::collection::vec(piece(), 0..12)) {
            let path = format!("/{}", pieces.concat());
            if check_path(&path).is_ok() {
                prop_assert!(upstream_reads_it_as_sent(&path), "{path}");
            }
        }

        /// Nor does any other text, and nothing panics.
        #[test]
        fn arbitrary_text_never_passes_a_misread_path(path in "/.{0,40}") {
            if check_path(&path).is_ok() {
                prop_assert!(upstream_reads_it_as_sent(&path), "{path}");
            }
        }
    }
}
