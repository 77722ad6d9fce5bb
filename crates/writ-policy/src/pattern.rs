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
pub(crate) enum Tok {
    Byte(u8),
    One,
    Star,
}

/// A run of tokens, or a policy variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Toks(Vec<Tok>),
    Var {
        key_lower: Box<str>,
        /// The key as written, for explanations.
        key: Box<str>,
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
    Glob(Glob),
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
            Kind::Glob(glob) => glob.matches(text),
            Kind::Template(segs) => match resolve(segs, vars) {
                Some(toks) => match_tokens(&toks, text),
                None => false,
            },
        }
    }

    /// The variables this pattern needs a value for, as (lower-cased key, key as written):
    /// those without a default.
    pub(crate) fn required_variables(&self) -> impl Iterator<Item = (&str, &str)> {
        let segs: &[Seg] = match &self.kind {
            Kind::Template(segs) => segs,
            _ => &[],
        };
        segs.iter().filter_map(|seg| match seg {
            Seg::Var {
                key_lower,
                key,
                default: None,
            } => Some((key_lower.as_ref(), key.as_ref())),
            _ => None,
        })
    }

    /// The first variable of this pattern that has no value in `vars` and no default, as
    /// written.
    pub(crate) fn unresolved(&self, vars: &dyn Vars) -> Option<&str> {
        self.required_variables()
            .find(|(lower, _)| vars.var(lower).is_none())
            .map(|(_, key)| key)
    }

    /// The text of a literal pattern with its variables expanded; `None` when a variable has
    /// no value. Only meaningful for patterns built with [`Pattern::literal`].
    pub(crate) fn resolve_literal<'p>(&'p self, vars: &dyn Vars) -> Option<Cow<'p, str>> {
        match &self.kind {
            Kind::Exact(s) => Some(Cow::Borrowed(s)),
            Kind::Template(segs) => literal_text(&resolve(segs, vars)?).map(Cow::Owned),
            // Literal patterns never hold wildcards.
            Kind::Any | Kind::Prefix(_) | Kind::Glob(_) => None,
        }
    }
}

fn simplify(toks: &[Tok]) -> Kind {
    if toks == [Tok::Star] {
        return Kind::Any;
    }
    if let Some(s) = literal_text(toks) {
        return Kind::Exact(s.into());
    }
    if let Some((Tok::Star, head)) = toks.split_last()
        && let Some(s) = literal_text(head)
    {
        return Kind::Prefix(s.into());
    }
    Kind::Glob(Glob::new(toks))
}

/// The text of tokens that are all literal bytes; `None` if one is a wildcard.
fn literal_text(toks: &[Tok]) -> Option<String> {
    let bytes: Option<Vec<u8>> = toks
        .iter()
        .map(|t| match t {
            Tok::Byte(b) => Some(*b),
            _ => None,
        })
        .collect();
    bytes.and_then(|b| String::from_utf8(b).ok())
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

pub(crate) fn parse_segments(
    text: &str,
    wildcards: bool,
    expand_vars: bool,
) -> Result<Vec<Seg>, VarError> {
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
                    key: key.into(),
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
            Seg::Var {
                key_lower, default, ..
            } => {
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

/// What the matcher needs of the text between two `*`s.
trait PieceOps {
    /// Where a match starting at byte `at` ends.
    fn match_at(&self, hay: &str, at: usize) -> Option<usize>;
    /// The leftmost match starting at or after `from`, as (start, end).
    fn find(&self, hay: &str, from: usize) -> Option<(usize, usize)>;
    /// Where a match would have to start to end exactly at `end`.
    fn start_for_end(&self, hay: &str, end: usize) -> Option<usize>;
}

/// Tokens without `*`: literal bytes and `?`.
impl PieceOps for &[Tok] {
    fn match_at(&self, hay: &str, at: usize) -> Option<usize> {
        let bytes = hay.as_bytes();
        let mut i = at;
        for t in self.iter() {
            match t {
                Tok::Byte(b) if bytes.get(i) == Some(b) => i += 1,
                Tok::One if i < bytes.len() => i += char_width(bytes[i]),
                _ => return None,
            }
        }
        Some(i)
    }

    fn find(&self, hay: &str, from: usize) -> Option<(usize, usize)> {
        (from..=hay.len())
            .filter(|&i| hay.is_char_boundary(i))
            .find_map(|i| self.match_at(hay, i).map(|end| (i, end)))
    }

    fn start_for_end(&self, hay: &str, end: usize) -> Option<usize> {
        // Count characters: '?' is one, and a literal byte starts one unless it is a UTF-8
        // continuation byte.
        let chars = self
            .iter()
            .filter(|t| match t {
                Tok::One => true,
                Tok::Byte(b) => b & 0xc0 != 0x80,
                Tok::Star => false,
            })
            .count();
        if chars == 0 {
            return Some(end);
        }
        hay.get(..end)?
            .char_indices()
            .rev()
            .nth(chars - 1)
            .map(|(i, _)| i)
    }
}

/// The text between two `*`s of a compiled pattern: plain text, or text with `?`s.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(Box<str>),
    Wild(Box<[Tok]>),
}

impl PieceOps for Piece {
    fn match_at(&self, hay: &str, at: usize) -> Option<usize> {
        match self {
            Piece::Lit(lit) => hay
                .get(at..)
                .filter(|rest| rest.starts_with(lit.as_ref()))
                .map(|_| at + lit.len()),
            Piece::Wild(toks) => (&toks[..]).match_at(hay, at),
        }
    }

    fn find(&self, hay: &str, from: usize) -> Option<(usize, usize)> {
        match self {
            // std's substring search is linear in the text.
            Piece::Lit(lit) => hay
                .get(from..)?
                .find(lit.as_ref())
                .map(|i| (from + i, from + i + lit.len())),
            Piece::Wild(toks) => (&toks[..]).find(hay, from),
        }
    }

    fn start_for_end(&self, hay: &str, end: usize) -> Option<usize> {
        match self {
            Piece::Lit(lit) => end.checked_sub(lit.len()),
            Piece::Wild(toks) => (&toks[..]).start_for_end(hay, end),
        }
    }
}

/// Where the `*`s of a pattern are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stars {
    any: bool,
    at_start: bool,
    at_end: bool,
}

impl Stars {
    fn of(toks: &[Tok]) -> Stars {
        Stars {
            any: toks.contains(&Tok::Star),
            at_start: toks.first() == Some(&Tok::Star),
            at_end: toks.last() == Some(&Tok::Star),
        }
    }
}

/// Matches the pieces between `*`s left to right, the first and last anchored unless the
/// pattern starts or ends with `*`. Leftmost-first is correct because every piece matches a
/// fixed number of characters.
fn match_pieces<P: PieceOps>(pieces: &[P], stars: Stars, hay: &str) -> bool {
    if !stars.any {
        return match pieces {
            [] => hay.is_empty(),
            [p] => p.match_at(hay, 0) == Some(hay.len()),
            _ => false,
        };
    }
    let (mut lo, mut hi) = (0, pieces.len());
    let mut pos = 0;
    let mut end = hay.len();
    if !stars.at_start && lo < hi {
        match pieces[0].match_at(hay, 0) {
            Some(e) => pos = e,
            None => return false,
        }
        lo += 1;
    }
    if !stars.at_end && lo < hi {
        let last = &pieces[hi - 1];
        let Some(start) = last.start_for_end(hay, end) else {
            return false;
        };
        if start < pos || last.match_at(hay, start) != Some(end) {
            return false;
        }
        end = start;
        hi -= 1;
    }
    let Some(window) = hay.get(..end) else {
        return false;
    };
    for piece in &pieces[lo..hi] {
        match piece.find(window, pos) {
            Some((_, e)) => pos = e,
            None => return false,
        }
    }
    pos <= end
}

/// Matches resolved template tokens without compiling them: one small allocation.
fn match_tokens(toks: &[Tok], hay: &str) -> bool {
    let pieces: Vec<&[Tok]> = toks
        .split(|t| *t == Tok::Star)
        .filter(|seg| !seg.is_empty())
        .collect();
    match_pieces(&pieces, Stars::of(toks), hay)
}

/// A compiled wildcard pattern. Literal pieces are found with a linear substring search, so
/// matching is linear in the text unless a piece holds `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Glob {
    pieces: Box<[Piece]>,
    stars: Stars,
}

impl Glob {
    fn new(toks: &[Tok]) -> Glob {
        let pieces = toks
            .split(|t| *t == Tok::Star)
            .filter(|seg| !seg.is_empty())
            .map(|seg| match literal_text(seg) {
                Some(text) => Piece::Lit(text.into()),
                // Holds '?' (or, never for tokens made from text, invalid UTF-8).
                None => Piece::Wild(seg.into()),
            })
            .collect();
        Glob {
            pieces,
            stars: Stars::of(toks),
        }
    }

    fn matches(&self, hay: &str) -> bool {
        match_pieces(&self.pieces, self.stars, hay)
    }
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
    fn anchored_pieces_do_not_overlap() {
        assert!(!g("ab*ba", "aba"));
        assert!(g("ab*ba", "abba"));
        assert!(g("a?*?a", "a\u{e9}\u{e9}a"));
        assert!(!g("a?*?a", "a\u{e9}a"));
        assert!(g("*?", "\u{1f600}"));
        assert!(!g("x*?", "x"));
        assert!(g("*a?c*", "zzabcabc"));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        // Quadratic matching would take minutes here; linear search takes microseconds.
        let pattern = format!("*{}b", "a".repeat(20_000));
        let text = "a".repeat(100_000);
        assert!(!g(&pattern, &text));
        let pattern = format!("*{}*{}*", "a".repeat(5_000), "c".repeat(5_000));
        assert!(!g(&pattern, &"ab".repeat(50_000)));
    }

    #[test]
    fn literal_patterns_ignore_wildcards() {
        let p = Pattern::literal("a*", true).unwrap();
        assert!(p.matches("a*", &none()));
        assert!(!p.matches("ab", &none()));
        assert_eq!(p.exact(), Some("a*"));
    }
}
