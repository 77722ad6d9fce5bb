//! Wildcard patterns with policy variables, as used in `Action`, `Resource` and conditions.
//!
//! `*` matches any run of characters and `?` exactly one. In `2012-10-17` policies,
//! `${key}` is replaced by the request's value of a single-valued context key (or by its
//! default in `${key, 'default'}`), and `${*}`, `${?}` and `${$}` stand for the literal
//! characters. Substituted text always matches literally, never as a wildcard.

use std::borrow::Cow;

/// Looks up the value a policy variable stands for.
pub(crate) trait Vars {
    /// The single value of a context key, by lower-cased name; `None` when absent or
    /// multivalued (AWS does not expand multivalued keys).
    fn var(&self, key_lower: &str) -> Option<&str>;
}

/// Matcher token: a literal byte, `?` (one character) or `*` (any run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Byte(u8),
    One,
    Star,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Toks(Vec<Tok>),
    Var {
        key_lower: Box<str>,
        default: Option<Box<str>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// `*`: matches everything.
    Any,
    /// No wildcard, no variable.
    Exact(Box<str>),
    /// `prefix*` with no other wildcard or variable.
    Prefix(Box<str>),
    /// Wildcards, no variable.
    Glob(Box<[Tok]>),
    /// With variables: resolved per request, then matched.
    Template(Box<[Seg]>),
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    kind: Kind,
}

/// A malformed policy variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VarError {
    /// `${` without a closing `}`.
    Unterminated,
    /// `${}` or a default that is not a single-quoted string.
    Malformed(String),
}

impl std::fmt::Display for VarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarError::Unterminated => f.write_str("policy variable \"${\" is not closed by \"}\""),
            VarError::Malformed(v) => write!(
                f,
                "malformed policy variable \"${{{v}}}\": write ${{key}} or ${{key, 'default'}}"
            ),
        }
    }
}

impl Pattern {
    /// A pattern where `*` and `?` are wildcards.
    pub(crate) fn glob(text: &str, expand_vars: bool) -> Result<Pattern, VarError> {
        Pattern::build(text, true, expand_vars)
    }

    /// A pattern where every character is literal (for `StringEquals` and friends); only
    /// policy variables are expanded.
    pub(crate) fn literal(text: &str, expand_vars: bool) -> Result<Pattern, VarError> {
        Pattern::build(text, false, expand_vars)
    }

    fn build(text: &str, wildcards: bool, expand_vars: bool) -> Result<Pattern, VarError> {
        // Fast paths for the common shapes: no variable, and no wildcard or one final `*`.
        if !(expand_vars && text.contains("${")) {
            if !wildcards || !text.contains(['*', '?']) {
                return Ok(Pattern {
                    kind: Kind::Exact(text.into()),
                });
            }
            if text == "*" {
                return Ok(Pattern { kind: Kind::Any });
            }
            if let Some(prefix) = text.strip_suffix('*')
                && !prefix.contains(['*', '?'])
            {
                return Ok(Pattern {
                    kind: Kind::Prefix(prefix.into()),
                });
            }
        }
        let segs = parse_segments(text, wildcards, expand_vars)?;
        let kind = match segs.as_slice() {
            [] => Kind::Exact("".into()),
            [Seg::Toks(toks)] => simplify(toks),
            _ => Kind::Template(segs.into_boxed_slice()),
        };
        Ok(Pattern { kind })
    }

    /// The exact text this pattern matches, when it has no wildcard and no variable.
    pub(crate) fn exact(&self) -> Option<&str> {
        match &self.kind {
            Kind::Exact(s) => Some(s),
            _ => None,
        }
    }

    /// Matches `text`; a variable with no value and no default makes the pattern match nothing.
    pub(crate) fn matches(&self, text: &str, vars: &dyn Vars) -> bool {
        match &self.kind {
            Kind::Any => true,
            Kind::Exact(s) => s.as_ref() == text,
            Kind::Prefix(p) => text.starts_with(p.as_ref()),
            Kind::Glob(toks) => glob_match(toks, text.as_bytes()),
            Kind::Template(segs) => match resolve(segs, vars) {
                Some(toks) => glob_match(&toks, text.as_bytes()),
                None => false,
            },
        }
    }

    /// The text of a literal pattern with its variables expanded; `None` when a variable has
    /// no value. Only meaningful for patterns built with [`Pattern::literal`].
    pub(crate) fn resolve_literal<'p>(&'p self, vars: &dyn Vars) -> Option<Cow<'p, str>> {
        match &self.kind {
            Kind::Exact(s) => Some(Cow::Borrowed(s)),
            Kind::Template(segs) => {
                let toks = resolve(segs, vars)?;
                let bytes: Vec<u8> = toks
                    .iter()
                    .filter_map(|t| match t {
                        Tok::Byte(b) => Some(*b),
                        _ => None,
                    })
                    .collect();
                String::from_utf8(bytes).ok().map(Cow::Owned)
            }
            // Literal patterns never hold wildcards.
            Kind::Any | Kind::Prefix(_) | Kind::Glob(_) => None,
        }
    }
}

fn simplify(toks: &[Tok]) -> Kind {
    if toks == [Tok::Star] {
        return Kind::Any;
    }
    let literal = |ts: &[Tok]| -> Option<String> {
        let bytes: Option<Vec<u8>> = ts
            .iter()
            .map(|t| match t {
                Tok::Byte(b) => Some(*b),
                _ => None,
            })
            .collect();
        bytes.and_then(|b| String::from_utf8(b).ok())
    };
    if let Some(s) = literal(toks) {
        return Kind::Exact(s.into());
    }
    if let Some((Tok::Star, head)) = toks.split_last()
        && let Some(s) = literal(head)
    {
        return Kind::Prefix(s.into());
    }
    Kind::Glob(toks.into())
}

fn push_text(toks: &mut Vec<Tok>, text: &str, wildcards: bool) {
    for b in text.bytes() {
        toks.push(match b {
            b'*' if wildcards => Tok::Star,
            b'?' if wildcards => Tok::One,
            _ => Tok::Byte(b),
        });
    }
}

fn parse_segments(text: &str, wildcards: bool, expand_vars: bool) -> Result<Vec<Seg>, VarError> {
    let mut segs = Vec::new();
    let mut toks = Vec::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let Some(start) = rest.find("${").filter(|_| expand_vars) else {
            push_text(&mut toks, rest, wildcards);
            break;
        };
        push_text(&mut toks, &rest[..start], wildcards);
        let after = &rest[start + 2..];
        let end = find_var_end(after).ok_or(VarError::Unterminated)?;
        let inner = &after[..end];
        rest = &after[end + 1..];
        match inner {
            "*" | "?" | "$" => toks.push(Tok::Byte(inner.as_bytes()[0])),
            _ => {
                let (key, default) = parse_var(inner)?;
                if !toks.is_empty() {
                    segs.push(Seg::Toks(std::mem::take(&mut toks)));
                }
                segs.push(Seg::Var {
                    key_lower: key.to_ascii_lowercase().into(),
                    default: default.map(Into::into),
                });
            }
        }
    }
    if !toks.is_empty() {
        segs.push(Seg::Toks(toks));
    }
    Ok(segs)
}

/// The index of the `}` closing a variable, skipping a quoted default that may contain `}`.
fn find_var_end(s: &str) -> Option<usize> {
    let mut in_quote = false;
    for (i, c) in s.char_indices() {
        match c {
            '\'' => in_quote = !in_quote,
            '}' if !in_quote => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_var(inner: &str) -> Result<(&str, Option<&str>), VarError> {
    let malformed = || VarError::Malformed(inner.to_string());
    let (key, default) = match inner.split_once(',') {
        Some((k, d)) => {
            let d = d.trim();
            let d = d
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .filter(|d| !d.contains('\''))
                .ok_or_else(malformed)?;
            (k.trim(), Some(d))
        }
        None => (inner.trim(), None),
    };
    let valid_key = !key.is_empty()
        && key
            .chars()
            .all(|c| !c.is_whitespace() && !matches!(c, '$' | '{' | '}' | '\'' | ','));
    if !valid_key {
        return Err(malformed());
    }
    Ok((key, default))
}

fn resolve(segs: &[Seg], vars: &dyn Vars) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    for seg in segs {
        match seg {
            Seg::Toks(t) => out.extend_from_slice(t),
            Seg::Var { key_lower, default } => {
                let value = vars.var(key_lower).or(default.as_deref())?;
                out.extend(value.bytes().map(Tok::Byte));
            }
        }
    }
    Some(out)
}

/// Width of the UTF-8 character starting with byte `b`.
fn char_width(b: u8) -> usize {
    match b {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Classic wildcard matching with single-star backtracking: linear for typical patterns,
/// O(pattern x text) at worst, never exponential.
fn glob_match(toks: &[Tok], hay: &[u8]) -> bool {
    let (mut p, mut s) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while s < hay.len() {
        match toks.get(p) {
            Some(Tok::Byte(b)) if *b == hay[s] => {
                p += 1;
                s += 1;
            }
            Some(Tok::One) => {
                p += 1;
                s += char_width(hay[s]);
            }
            Some(Tok::Star) => {
                star = Some((p, s));
                p += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    let next = ss + char_width(hay[ss]);
                    star = Some((sp, next));
                    p = sp + 1;
                    s = next;
                }
                None => return false,
            },
        }
    }
    while toks.get(p) == Some(&Tok::Star) {
        p += 1;
    }
    p == toks.len() && s == hay.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, &'static str>);
    impl Vars for Map {
        fn var(&self, key_lower: &str) -> Option<&str> {
            self.0.get(key_lower).copied()
        }
    }
    fn none() -> Map {
        Map(HashMap::new())
    }

    fn g(p: &str, t: &str) -> bool {
        Pattern::glob(p, true).unwrap().matches(t, &none())
    }

    #[test]
    fn wildcards() {
        assert!(g("*", ""));
        assert!(g("s3:Get*", "s3:GetObject"));
        assert!(!g("s3:Get*", "s3:PutObject"));
        assert!(g("a?c", "abc"));
        assert!(g("a?c", "a\u{e9}c"));
        assert!(!g("a?c", "ac"));
        assert!(g("*b*d", "abcbd"));
        assert!(g("arn:aws:s3:::bucket/*/x", "arn:aws:s3:::bucket/a/b/x"));
        assert!(!g("arn:aws:s3:::bucket/*/x", "arn:aws:s3:::bucket/a/b/y"));
        assert!(g("**a**", "xxaxx"));
        assert!(!g("abc", "abcd"));
        assert!(g("", ""));
        assert!(!g("", "a"));
        assert!(g("?*?", "ab"));
        assert!(!g("?*?", "a"));
    }

    #[test]
    fn variables_substitute_literally() {
        let vars = Map(HashMap::from([("aws:username", "a*b")]));
        let p = Pattern::glob("home/${aws:username}/*", true).unwrap();
        assert!(p.matches("home/a*b/file", &vars));
        assert!(
            !p.matches("home/aXb/file", &vars),
            "substituted * is literal"
        );
        let p = Pattern::glob("x${*}y${?}${$}", true).unwrap();
        assert!(p.matches("x*y?$", &none()));
        assert!(!p.matches("xAy?$", &none()));
        let p = Pattern::glob("${aws:missing, 'guest'}/*", true).unwrap();
        assert!(p.matches("guest/1", &none()));
        let p = Pattern::glob("${aws:missing}/*", true).unwrap();
        assert!(
            !p.matches("/1", &none()),
            "a missing variable matches nothing"
        );
        let p = Pattern::glob("${aws:username}", false).unwrap();
        assert!(p.matches("${aws:username}", &none()), "2008-10-17: literal");
    }

    #[test]
    fn malformed_variables() {
        assert_eq!(Pattern::glob("a${b", true), Err(VarError::Unterminated));
        assert!(Pattern::glob("${}", true).is_err());
        assert!(Pattern::glob("${a, guest}", true).is_err());
        assert!(Pattern::glob("${a, 'x}y'}", true).is_ok());
    }

    #[test]
    fn literal_patterns_ignore_wildcards() {
        let p = Pattern::literal("a*", true).unwrap();
        assert!(p.matches("a*", &none()));
        assert!(!p.matches("ab", &none()));
        assert_eq!(p.exact(), Some("a*"));
    }
}
