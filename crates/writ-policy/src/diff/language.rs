//! The string dimensions of a statement as regular languages: `Action` / `NotAction`,
//! `Resource` / `NotResource` and `Principal`, each a list of patterns over [`Sym`].
//!
//! Actions are lower-cased, as the evaluator compares them; resources keep their case.
//! Principals are encoded as one string each, a kind tag and the principal's id
//! (`aws:arn:aws:iam::123456789012:role/x`, `service:apigateway.amazonaws.com`,
//! `spiffe:spiffe://example.org/fn/a`, `anonymous`, ...), so that the principals a
//! statement names form a regular language too.

use crate::diff::automaton::Sym;
use crate::model::{Effect, PatternElement, PrincipalElement, PrincipalKind, Principals};
use crate::pattern::{Seg, Tok, parse_segments};
use crate::request::Principal;
use crate::values::{is_account_id, split_arn};

/// A union of patterns, or its complement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Lang {
    /// True for the complement of the union (`NotAction`, `NotResource`).
    pub(crate) negated: bool,
    /// The patterns. A negated language with no pattern is every string.
    pub(crate) patterns: Vec<Vec<Sym>>,
    /// Each pattern as people read it, in the same order.
    pub(crate) texts: Vec<String>,
}

impl Lang {
    /// Every string.
    pub(crate) fn everything() -> Lang {
        Lang {
            negated: true,
            patterns: Vec::new(),
            texts: Vec::new(),
        }
    }
}

/// What a pattern holds: symbols, and whether policy variables were widened to `*`.
struct Widened {
    syms: Vec<Sym>,
    has_var: bool,
    required_var: bool,
}

/// Turns pattern text into symbols; each policy variable becomes `*` (the text it stands
/// for is literal, but may be anything).
fn widen(text: &str, wildcards: bool, expand: bool) -> Widened {
    let segs = parse_segments(text, wildcards, expand).unwrap_or_else(|_| {
        // The parser refuses malformed variables; read the text literally if one gets here.
        parse_segments(text, wildcards, false).unwrap_or_default()
    });
    let mut out = Widened {
        syms: Vec::new(),
        has_var: false,
        required_var: false,
    };
    for seg in segs {
        match seg {
            Seg::Toks(toks) => {
                let mut bytes = Vec::new();
                let flush = |bytes: &mut Vec<u8>, syms: &mut Vec<Sym>| {
                    syms.extend(String::from_utf8_lossy(bytes).chars().map(Sym::Lit));
                    bytes.clear();
                };
                for t in toks {
                    match t {
                        Tok::Byte(b) => bytes.push(b),
                        Tok::One => {
                            flush(&mut bytes, &mut out.syms);
                            out.syms.push(Sym::One);
                        }
                        Tok::Star => {
                            flush(&mut bytes, &mut out.syms);
                            out.syms.push(Sym::Star);
                        }
                    }
                }
                flush(&mut bytes, &mut out.syms);
            }
            Seg::Var { default, .. } => {
                out.has_var = true;
                out.required_var |= default.is_none();
                out.syms.push(Sym::Star);
            }
        }
    }
    out
}

/// The text of `text` as literal symbols.
fn literal(text: &str) -> Vec<Sym> {
    text.chars().map(Sym::Lit).collect()
}

/// Glob text (no variables) as symbols.
pub(crate) fn glob(text: &str) -> Vec<Sym> {
    widen(text, true, false).syms
}

/// The actions of `Action` / `NotAction`, lower-cased.
pub(crate) fn actions(e: &PatternElement) -> Lang {
    Lang {
        negated: e.negated,
        patterns: e
            .patterns
            .iter()
            .map(|p| glob(&p.to_ascii_lowercase()))
            .collect(),
        texts: e.patterns.clone(),
    }
}

/// The resources a statement may match, and whether that depends on policy variables
/// (then the language is a superset, and the statement's match is decided per request).
pub(crate) fn resources(e: &PatternElement, effect: Effect, expand: bool) -> (Lang, bool) {
    let widened: Vec<Widened> = e.patterns.iter().map(|p| widen(p, true, expand)).collect();
    let has_var = widened.iter().any(|w| w.has_var);
    // A Deny that needs a variable the request lacks applies to every resource.
    if effect == Effect::Deny && widened.iter().any(|w| w.required_var) {
        return (Lang::everything(), true);
    }
    let (patterns, texts) = widened
        .into_iter()
        .zip(&e.patterns)
        // In NotResource, a pattern with a variable may match nothing, so it can exclude
        // nothing for sure.
        .filter(|(w, _)| !(e.negated && w.has_var))
        .map(|(w, t)| (w.syms, t.clone()))
        .unzip();
    (
        Lang {
            negated: e.negated,
            patterns,
            texts,
        },
        has_var,
    )
}

/// True when condition value text holds a policy variable without a default.
pub(crate) fn has_required_var(text: &str) -> bool {
    widen(text, false, true).required_var
}

/// `[^:]*`.
const PART: Sym = Sym::StarExcept(':');

fn seq(parts: &[&[Sym]]) -> Vec<Sym> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// Every principal there is: one pattern per kind tag, and `anonymous`.
pub(crate) fn principal_universe() -> Lang {
    let tags = [
        ("aws:", "any AWS principal"),
        ("service:", "any service"),
        ("federated:", "any federated principal"),
        ("canonical:", "any canonical user"),
        ("spiffe:", "any SPIFFE workload"),
    ];
    let mut patterns: Vec<Vec<Sym>> = tags
        .iter()
        .map(|(tag, _)| seq(&[&literal(tag), &[Sym::Star]]))
        .collect();
    let mut texts: Vec<String> = tags.iter().map(|(_, t)| t.to_string()).collect();
    patterns.push(literal("anonymous"));
    texts.push("anonymous".into());
    Lang {
        negated: false,
        patterns,
        texts,
    }
}

/// The principals a `Principal` element names: for an Allow, those it grants to in a
/// resource policy alone (an account names only its root; it delegates for everyone else);
/// for a Deny, every principal it matches. `None` for `NotPrincipal`, which is decided per
/// request (its match depends on the caller's identity chain).
pub(crate) fn principals(e: &PrincipalElement, effect: Effect) -> Option<Lang> {
    if e.negated {
        return None;
    }
    let named = match &e.principals {
        Principals::Any => return Some(principal_universe()),
        Principals::Named(named) => named,
    };
    let mut patterns = Vec::new();
    let mut texts = Vec::new();
    for (kind, values) in named {
        for v in values {
            let before = patterns.len();
            match kind {
                PrincipalKind::Aws if v == "*" => return Some(principal_universe()),
                PrincipalKind::Aws => aws_principal(v, effect, &mut patterns, &mut texts),
                PrincipalKind::Service => {
                    patterns.push(literal(&format!("service:{}", v.to_ascii_lowercase())))
                }
                PrincipalKind::Federated => patterns.push(literal(&format!("federated:{v}"))),
                PrincipalKind::CanonicalUser => patterns.push(literal(&format!("canonical:{v}"))),
                PrincipalKind::Spiffe => patterns.push(seq(&[&literal("spiffe:"), &glob(v)])),
            }
            while texts.len() < patterns.len() {
                texts.push(format!("{kind} {v}"));
            }
            debug_assert!(patterns.len() >= before);
        }
    }
    Some(Lang {
        negated: false,
        patterns,
        texts,
    })
}

/// The AWS principals one `AWS` entry names.
fn aws_principal(v: &str, effect: Effect, out: &mut Vec<Vec<Sym>>, texts: &mut Vec<String>) {
    let tag = literal("aws:");
    let account = if is_account_id(v) {
        Some(v)
    } else {
        split_arn(v)
            .filter(|p| p[2] == "iam" && p[5] == "root")
            .map(|p| p[4])
    };
    if let Some(acct) = account {
        let acct = literal(acct);
        // The account itself: its id, or any root ARN in it.
        out.push(seq(&[&tag, &acct]));
        texts.push(format!("AWS {v}"));
        out.push(seq(&[
            &tag,
            &[PART],
            &literal(":"),
            &[PART],
            &literal(":iam:"),
            &[PART],
            &literal(":"),
            &acct,
            &literal(":root"),
        ]));
        texts.push(format!("AWS {v} (its root user)"));
        if effect == Effect::Deny {
            // A Deny naming an account applies to everyone in it.
            out.push(seq(&[
                &tag,
                &[PART],
                &literal(":"),
                &[PART],
                &literal(":"),
                &[PART],
                &literal(":"),
                &[PART],
                &literal(":"),
                &acct,
                &literal(":"),
                &[Sym::Star],
            ]));
            texts.push(format!("anyone in AWS account {v}"));
        }
        return;
    }
    out.push(seq(&[&tag, &literal(v)]));
    texts.push(format!("AWS {v}"));
    // A role names its sessions too.
    if let Some(r) = split_arn(v)
        && r[2] == "iam"
        && let Some(path) = r[5].strip_prefix("role/")
    {
        let name = path.rsplit('/').next().unwrap_or(path);
        let session = seq(&[
            &tag,
            &[PART],
            &literal(":"),
            &literal(r[1]),
            &literal(":sts:"),
            &[PART],
            &literal(":"),
            &literal(r[4]),
            &literal(":assumed-role/"),
            &literal(name),
        ]);
        out.push(session.clone());
        out.push(seq(&[&session, &literal("/"), &[Sym::Star]]));
        texts.push(format!("sessions of AWS {v}"));
        texts.push(format!("sessions of AWS {v}"));
    }
}

/// The principal a word of the principal language stands for.
pub(crate) fn principal_of_word(word: &str) -> Option<Principal> {
    if word == "anonymous" {
        return Some(Principal::Anonymous);
    }
    let (tag, id) = word.split_once(':')?;
    let id = id.to_string();
    Some(match tag {
        "aws" => Principal::Aws(id),
        "service" => Principal::Service(id),
        "federated" => Principal::Federated(id),
        "canonical" => Principal::CanonicalUser(id),
        "spiffe" => Principal::Spiffe(id),
        _ => return None,
    })
}

/// How a principal reads in reports: `AWS arn:...`, `Service x`, `anonymous`.
pub(crate) fn describe_principal_word(word: &str) -> String {
    principal_of_word(word)
        .map(|p| p.to_string())
        .unwrap_or_else(|| word.to_string())
}
