//! Conditions, treated as opaque atoms: each distinct condition block is one proposition
//! that a request makes true or false. `diff` asks for which truth values of these atoms
//! NEW allows and OLD refuses, and writes a request context that should make an atom true
//! or false (the evaluator then checks that it does).
//!
//! Atoms are taken as independent, which can only report more than there is (two blocks
//! that can never both hold are still tried together); a reported case that no request can
//! reach gets no verified witness, and says so.

use std::collections::HashMap;

use crate::model::Condition;
use crate::operator::{OperatorKind, SetQualifier, ValueType};
use crate::request::{Context, ContextValue};

/// The index of an atom; [`TRUE`] is the empty condition block, which always holds.
pub(crate) type AtomId = u32;

/// The atom of a statement without conditions.
pub(crate) const TRUE: AtomId = 0;

/// One condition atom.
#[derive(Debug, Clone)]
pub(crate) struct Atom {
    /// What it says, for people.
    pub(crate) description: String,
    /// The conditions that must all hold.
    pub(crate) conditions: Vec<Condition>,
    /// Policy variables (keys as written) the statement needs a value for.
    pub(crate) variables: Vec<String>,
    /// True when the atom says more than its conditions (policy variables, `NotPrincipal`):
    /// no implication between conditions decides it.
    pub(crate) opaque: bool,
}

/// The atoms of both sides, interned: equal condition blocks are one atom.
#[derive(Debug, Default)]
pub(crate) struct Atoms {
    pub(crate) atoms: Vec<Atom>,
    by_block: HashMap<Vec<(String, String, Vec<String>)>, AtomId>,
    by_statement: HashMap<String, AtomId>,
}

impl Atoms {
    /// The table, holding only [`TRUE`].
    pub(crate) fn new() -> Atoms {
        Atoms {
            atoms: vec![Atom {
                description: "unconditionally".into(),
                conditions: Vec::new(),
                variables: Vec::new(),
                opaque: false,
            }],
            by_block: HashMap::new(),
            by_statement: HashMap::new(),
        }
    }

    /// The atom of a condition block that depends on nothing else.
    /// `expand` says whether policy variables are expanded (a `2012-10-17` policy): the
    /// same text means something else in a `2008-10-17` one.
    pub(crate) fn block(&mut self, conditions: &[Condition], expand: bool) -> AtomId {
        if conditions.is_empty() {
            return TRUE;
        }
        let literal_vars = !expand
            && conditions
                .iter()
                .any(|c| c.values.iter().any(|v| v.contains("${")));
        let mut key: Vec<(String, String, Vec<String>)> = conditions
            .iter()
            .map(|c| {
                let mut values = c.values.clone();
                values.sort();
                (c.operator.to_string(), c.key.to_ascii_lowercase(), values)
            })
            .collect();
        key.sort();
        if literal_vars {
            key.push(("2008-10-17".into(), String::new(), Vec::new()));
        }
        if let Some(&id) = self.by_block.get(&key) {
            return id;
        }
        let id = self.push(Atom {
            description: describe_block(conditions),
            conditions: conditions.to_vec(),
            variables: Vec::new(),
            opaque: false,
        });
        self.by_block.insert(key, id);
        id
    }

    /// The atom of a statement whose match depends on more than its condition block
    /// (policy variables, `NotPrincipal`): one per distinct `key`, which must hold
    /// everything that decides it besides the action (effect, resource, principal,
    /// conditions), so equal statements on both sides share it.
    pub(crate) fn keyed(&mut self, key: String, atom: Atom) -> AtomId {
        if let Some(&id) = self.by_statement.get(&key) {
            return id;
        }
        let id = self.push(atom);
        self.by_statement.insert(key, id);
        id
    }

    fn push(&mut self, atom: Atom) -> AtomId {
        self.atoms.push(atom);
        (self.atoms.len() - 1) as AtomId
    }
}

/// The conditions of a block, for people: `StringEquals aws:SourceVpc = vpc-1 and ...`.
pub(crate) fn describe_block(conditions: &[Condition]) -> String {
    conditions
        .iter()
        .map(|c| {
            let values = if c.values.len() == 1 {
                c.values[0].clone()
            } else {
                format!("[{}]", c.values.join(", "))
            };
            format!("{} {} {}", c.operator, c.key, values)
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

/// One way for a request to be allowed by one side and refused by the other: these atoms
/// hold and those do not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Scenario {
    /// Atoms that must hold ([`TRUE`] left out).
    pub(crate) holds: Vec<AtomId>,
    /// Atoms that must not hold.
    pub(crate) fails: Vec<AtomId>,
}

impl Scenario {
    /// True when it needs no condition.
    pub(crate) fn unconditional(&self) -> bool {
        self.holds.is_empty() && self.fails.is_empty()
    }
}

/// The atoms of the statements that match one region of requests, by side and effect.
#[derive(Debug, Default, Clone)]
pub(crate) struct Matching {
    /// Allow statements of the side that should allow.
    pub(crate) allows: Vec<AtomId>,
    /// Deny statements of the side that should allow.
    pub(crate) denies: Vec<AtomId>,
    /// Allow statements of the side that should refuse.
    pub(crate) other_allows: Vec<AtomId>,
    /// Deny statements of the side that should refuse.
    pub(crate) other_denies: Vec<AtomId>,
}

/// Every scenario (up to subsumption by the choice of atoms) under which the first side
/// allows (one of its allows holds, none of its denies does) and the other refuses (none of
/// its allows holds, or one of its denies does). Empty when there is none: then no request
/// of the region is allowed by one and refused by the other.
pub(crate) fn scenarios(m: &Matching) -> Vec<Scenario> {
    let mut out = Vec::new();
    if m.denies.contains(&TRUE) {
        return out;
    }
    let mut allows = m.allows.clone();
    allows.sort_unstable();
    allows.dedup();
    let mut other_denies = m.other_denies.clone();
    other_denies.sort_unstable();
    other_denies.dedup();
    let mut fails_base: Vec<AtomId> = m.denies.clone();
    fails_base.sort_unstable();
    fails_base.dedup();
    for &a in &allows {
        if fails_base.contains(&a) {
            continue;
        }
        let holds = |extra: Option<AtomId>| {
            let mut h: Vec<AtomId> = [Some(a), extra].into_iter().flatten().collect();
            h.retain(|&x| x != TRUE);
            h.sort_unstable();
            h.dedup();
            h
        };
        // The other side has no allow that holds.
        if !m.other_allows.contains(&TRUE) && !m.other_allows.contains(&a) {
            let mut fails = fails_base.clone();
            fails.extend(m.other_allows.iter().copied());
            fails.sort_unstable();
            fails.dedup();
            out.push(Scenario {
                holds: holds(None),
                fails,
            });
        }
        // Or one of its denies holds.
        for &d in &other_denies {
            if fails_base.contains(&d) {
                continue;
            }
            out.push(Scenario {
                holds: holds(Some(d)),
                fails: fails_base.clone(),
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// True when no request can make every atom of `holds` true and every atom of `fails`
/// false, as far as a simple implication shows: some atom that must hold implies some atom
/// that must fail. Only ever removes cases no request reaches.
pub(crate) fn unreachable(sc: &Scenario, atoms: &[Atom]) -> bool {
    sc.holds.iter().any(|&h| {
        sc.fails
            .iter()
            .any(|&f| implies(&atoms[h as usize], &atoms[f as usize]))
    })
}

/// True when every request that satisfies `a` satisfies `b`: each condition of `b` is
/// implied by one condition of `a`. Conservative: false when unsure.
fn implies(a: &Atom, b: &Atom) -> bool {
    if a.opaque || b.opaque || b.conditions.is_empty() {
        return false;
    }
    b.conditions
        .iter()
        .all(|cb| a.conditions.iter().any(|ca| condition_implies(ca, cb)))
}

/// One condition implies another on the same key: the same condition, or a string
/// equality whose values all satisfy the other's `StringEquals` / `StringLike` values.
fn condition_implies(a: &Condition, b: &Condition) -> bool {
    if !a.key.eq_ignore_ascii_case(&b.key) {
        return false;
    }
    let no_vars = |c: &Condition| c.values.iter().all(|v| !v.contains("${"));
    if !no_vars(a) || !no_vars(b) {
        return false;
    }
    if a.operator == b.operator {
        let within = |x: &Condition, y: &Condition| x.values.iter().all(|v| y.values.contains(v));
        // A positive operator holds for one of its values: fewer values, fewer requests. A
        // negated one must differ from all of them: more values, fewer requests.
        return match a.operator.kind {
            OperatorKind::Null => a.values == b.values,
            k if k.is_negated() => within(b, a),
            _ => within(a, b),
        };
    }
    let plain = |c: &Condition| c.operator.set.is_none() && !c.operator.if_exists;
    if !plain(a) || !plain(b) || a.operator.kind != OperatorKind::StringEquals {
        return false;
    }
    match b.operator.kind {
        OperatorKind::StringEquals => a.values.iter().all(|v| b.values.contains(v)),
        OperatorKind::StringLike => a
            .values
            .iter()
            .all(|v| b.values.iter().any(|p| crate::string_like(p, v))),
        _ => false,
    }
}

/// A value that no policy writes, for keys that must be present but match nothing.
const OTHER_VALUE: &str = "writ-diff-other";

/// A value that satisfies the positive form of a condition's operator against `v`.
fn satisfying(kind: OperatorKind, v: &str) -> String {
    use OperatorKind::*;
    let plain = strip_vars(v);
    match kind.positive() {
        StringLike | ArnLike => plain.replace('*', "").replace('?', "a"),
        ArnEquals => plain,
        NumericLessThan => crate::values::Decimal::parse(&plain)
            .and_then(|_| plain.parse::<i128>().ok())
            .map(|n| (n - 1).to_string())
            .unwrap_or(plain),
        NumericGreaterThan => plain
            .parse::<i128>()
            .map(|n| (n + 1).to_string())
            .unwrap_or(plain),
        DateLessThan => "1970-01-01T00:00:00Z".into(),
        DateGreaterThan => "2999-12-31T23:59:59Z".into(),
        IpAddress => plain.split('/').next().unwrap_or(&plain).to_string(),
        _ => plain,
    }
}

/// Condition value text with its policy variables replaced: by their default when they have
/// one (the witness leaves such variables unset), by nothing otherwise (the witness sets
/// every variable it needs to the empty string).
fn strip_vars(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let inner = &after[..end];
                if matches!(inner, "*" | "?" | "$") {
                    out.push_str(inner);
                } else if let Some((_, default)) = inner.split_once(',') {
                    out.push_str(default.trim().trim_matches('\''));
                }
                rest = &after[end + 1..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn value(c: &Condition, v: String) -> ContextValue {
    match c.operator.set {
        Some(_) => ContextValue::List(vec![v]),
        None => ContextValue::One(v),
    }
}

/// Writes into `ctx` values that make every condition of the atom hold. Keys already set
/// are left alone.
pub(crate) fn make_hold(atom: &Atom, ctx: &mut Context) {
    for var in &atom.variables {
        ctx.insert_default(var, "");
    }
    for c in &atom.conditions {
        let kind = c.operator.kind;
        if kind == OperatorKind::Null {
            // "Null": false needs the key present.
            if c.values.iter().all(|v| v == "false") {
                ctx.insert_default(&c.key, OTHER_VALUE);
            }
            continue;
        }
        let absent_holds = c.operator.if_exists
            || c.operator.set == Some(SetQualifier::ForAllValues)
            || (c.operator.set.is_none() && kind.is_negated());
        if absent_holds {
            continue;
        }
        let Some(first) = c.values.first() else {
            continue;
        };
        let v = if kind.is_negated() {
            OTHER_VALUE.to_string()
        } else {
            satisfying(kind, first)
        };
        ctx.insert_default(&c.key, value(c, v));
    }
}

/// Writes into `ctx` values that make one condition of the atom fail, choosing a key not
/// yet set. Returns false when it found none.
pub(crate) fn make_fail(atom: &Atom, ctx: &mut Context) -> bool {
    if atom.conditions.is_empty() && !atom.variables.is_empty() {
        // Leave a variable unset: an Allow that needs it does not apply.
        return atom.variables.iter().any(|v| ctx.get(v).is_none());
    }
    for c in &atom.conditions {
        if ctx.get(&c.key).is_some() {
            continue;
        }
        let kind = c.operator.kind;
        if kind == OperatorKind::Null {
            if c.values.iter().all(|v| v == "true") {
                ctx.insert(&c.key, OTHER_VALUE);
                return true;
            }
            if c.values.iter().all(|v| v == "false") {
                return true;
            }
            continue;
        }
        if c.operator.if_exists || c.operator.set == Some(SetQualifier::ForAllValues) {
            // Present with a value that does not match the positive form.
            if kind.is_negated() {
                if let Some(first) = c.values.first() {
                    ctx.insert(&c.key, value(c, satisfying(kind, first)));
                    return true;
                }
            } else if kind.value_type() == ValueType::String {
                ctx.insert(&c.key, value(c, OTHER_VALUE.into()));
                return true;
            }
            continue;
        }
        if kind.is_negated() {
            if let Some(first) = c.values.first() {
                if c.operator.set.is_some() {
                    // ForAnyValue with a negated operator fails when absent.
                    return true;
                }
                ctx.insert(&c.key, value(c, satisfying(kind, first)));
                return true;
            }
            continue;
        }
        // A positive operator fails when its key is absent.
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(a: &[u32], d: &[u32], oa: &[u32], od: &[u32]) -> Matching {
        Matching {
            allows: a.to_vec(),
            denies: d.to_vec(),
            other_allows: oa.to_vec(),
            other_denies: od.to_vec(),
        }
    }

    #[test]
    fn unconditional_difference() {
        let s = scenarios(&m(&[TRUE], &[], &[], &[]));
        assert_eq!(s.len(), 1);
        assert!(s[0].unconditional());
    }

    #[test]
    fn same_allow_on_both_sides_is_no_difference() {
        assert!(scenarios(&m(&[3], &[], &[3], &[])).is_empty());
        assert!(scenarios(&m(&[TRUE], &[], &[TRUE], &[])).is_empty());
        assert!(scenarios(&m(&[TRUE], &[TRUE], &[], &[])).is_empty());
    }

    #[test]
    fn conditions_are_reported() {
        // NEW allows under atom 2; OLD allows under atom 3: differs when 2 holds and 3 not.
        let s = scenarios(&m(&[2], &[], &[3], &[]));
        assert_eq!(
            s,
            vec![Scenario {
                holds: vec![2],
                fails: vec![3]
            }]
        );
        // OLD denies under 4: differs when 4 holds too.
        let s = scenarios(&m(&[TRUE], &[], &[TRUE], &[4]));
        assert_eq!(
            s,
            vec![Scenario {
                holds: vec![4],
                fails: vec![]
            }]
        );
    }

    fn atom(op: &str, key: &str, values: &[&str]) -> Atom {
        Atom {
            description: String::new(),
            conditions: vec![Condition {
                operator: crate::Operator::parse(op).unwrap(),
                key: key.into(),
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
            variables: Vec::new(),
            opaque: false,
        }
    }

    #[test]
    fn equality_implies_a_matching_like() {
        let atoms = vec![
            atom("Bool", "x", &["true"]),
            atom("StringEquals", "k", &["home/alice"]),
            atom("StringLike", "K", &["home/*"]),
            atom("StringLike", "k", &["work/*"]),
            atom("StringEqualsIfExists", "k", &["home/alice"]),
        ];
        let sc = |h: u32, f: u32| Scenario {
            holds: vec![h],
            fails: vec![f],
        };
        assert!(unreachable(&sc(1, 2), &atoms));
        assert!(
            !unreachable(&sc(2, 1), &atoms),
            "like does not imply equals"
        );
        assert!(!unreachable(&sc(1, 3), &atoms));
        assert!(
            !unreachable(&sc(4, 2), &atoms),
            "IfExists holds when absent"
        );
        let not = vec![
            atom("StringNotEquals", "k", &["a"]),
            atom("StringNotEquals", "k", &["a", "b"]),
        ];
        assert!(unreachable(&sc(1, 0), &not), "not a or b implies not a");
        assert!(!unreachable(&sc(0, 1), &not));
    }

    #[test]
    fn variables_are_dropped_from_values() {
        assert_eq!(strip_vars("home/${aws:username}/x${*}"), "home//x*");
        assert_eq!(strip_vars("${aws:username, 'guest'}/x"), "guest/x");
    }
}
