//! `diff`: what one policy allows that another does not, answered exactly for the string
//! dimensions and explicitly for conditions, with a verified witness for each difference.
//!
//! The method:
//!
//! 1. Every `Action`, `Resource` and `Principal` element is a regular language
//!    (module `language`); the languages of one dimension partition its strings into regions
//!    that each element contains whole or misses whole (module `partition`), computed with
//!    automata (module `automaton`).
//! 2. For each combination of an action region, a resource region and a principal region,
//!    the statements that match are known exactly; what is left is their conditions, each
//!    block an opaque atom (module `conditions`). The region differs when some truth values of
//!    the atoms make one side allow (an Allow holds and no Deny does) and the other refuse.
//! 3. Each reported region gets a concrete request built from the regions' shortest strings
//!    and the conditions' values, evaluated by [`crate::PolicySet`] on both sides
//!    (module `witness`); only a request decided as reported is given as a witness.
//!
//! The answer is sound: a request allowed by NEW and refused by OLD always falls in a
//! reported region. It can over-report only where conditions (or policy variables, or
//! `NotPrincipal`, or the cross-account rule of resource policies) make a listed case
//! unreachable; such a finding carries no witness and says so.

mod automaton;
mod conditions;
mod language;
mod partition;
mod report;
mod witness;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use report::{Change, ConditionCase, Finding, PolicyDiff, RegionPart, Witness};

use crate::compile::CompileError;
use crate::model::{Effect, Policy, PolicyKind, Version};
use automaton::{Alphabet, Dfa};
use conditions::{AtomId, Atoms, Matching, Scenario};
use language::Lang;
use partition::Region;

/// Why two policies could not be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    /// A policy does not compile (only policies built by hand can fail so).
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// A pattern needs too large an automaton to be compared exactly.
    #[error(
        "the {dimension} patterns are too complex to compare exactly (an automaton would need \
         more than {limit} states): simplify patterns that put `?` after `*`"
    )]
    TooComplex {
        /// `action`, `resource` or `principal`.
        dimension: &'static str,
        /// The bound on states.
        limit: usize,
    },
}

/// Limits a comparison to some actions and resources.
#[derive(Debug, Clone, Default)]
pub struct DiffScope {
    /// Action patterns (`*` and `?` allowed); `None` for every action.
    pub actions: Option<Vec<String>>,
    /// Resource patterns; `None` for every resource.
    pub resources: Option<Vec<String>>,
}

/// Compares the policies of OLD with those of NEW, all of the given kind, each a list of
/// named policies evaluated together as [`crate::PolicySet`] evaluates them. A permissions
/// boundary or session policy is compared as the limit it sets on an identity policy that
/// allows everything.
///
/// ```
/// use writ_policy::{ParseOptions, PolicyKind, diff::{diff, DiffScope}};
///
/// let parse = |t: &str| writ_policy::parse(t, &ParseOptions::new(PolicyKind::Identity))
///     .into_result().expect("valid");
/// let old = parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
///     "Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#);
/// let new = parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
///     "Action":"s3:Get*","Resource":"arn:aws:s3:::b/*"}]}"#);
/// let d = diff(&[("old", &old)], &[("new", &new)], PolicyKind::Identity, &DiffScope::default())
///     .expect("compiles");
/// assert!(d.grants_more());
/// assert_eq!(d.added[0].actions[0].description, "s3:Get* except s3:GetObject");
/// assert!(d.added[0].witness.is_some());
/// assert!(d.removed.is_empty());
/// ```
pub fn diff(
    old: &[(&str, &Policy)],
    new: &[(&str, &Policy)],
    kind: PolicyKind,
    scope: &DiffScope,
) -> Result<PolicyDiff, DiffError> {
    let sets = witness::Sets::new(old, new, kind)?;
    let mut b = Builder::new(kind);
    for (side, policies) in [(Side::Old, old), (Side::New, new)] {
        for (name, policy) in policies {
            b.add_policy(side, name, policy);
        }
    }
    let action_scope = scope.actions.as_ref().map(|a| {
        b.actions.intern_all(&Lang {
            negated: false,
            patterns: a
                .iter()
                .map(|p| language::glob(&p.to_ascii_lowercase()))
                .collect(),
            texts: a.clone(),
        })
    });
    let resource_scope = scope.resources.as_ref().map(|r| {
        b.resources.intern_all(&Lang {
            negated: false,
            patterns: r.iter().map(|p| language::glob(p)).collect(),
            texts: r.clone(),
        })
    });
    let actions = b
        .actions
        .regions(action_scope.as_ref(), "any action", "action")?;
    let resources = b
        .resources
        .regions(resource_scope.as_ref(), "any resource", "resource")?;
    let principals = if kind == PolicyKind::Resource {
        let universe = b.principals.intern_all(&language::principal_universe());
        Some(
            b.principals
                .regions(Some(&universe), "anyone", "principal")?,
        )
    } else {
        None
    };
    let stmts = &b.statements;
    let words = stmts.len().div_ceil(64);
    let masks = |regions: &[Region], lang_of: &dyn Fn(&Stmt) -> &StmtLang| -> Vec<Vec<u64>> {
        regions
            .iter()
            .map(|r| {
                let mut m = vec![0u64; words];
                for (i, s) in stmts.iter().enumerate() {
                    if lang_of(s).contains(r) {
                        m[i / 64] |= 1 << (i % 64);
                    }
                }
                m
            })
            .collect()
    };
    let a_masks = masks(&actions.regions, &|s| &s.action);
    let r_masks = masks(&resources.regions, &|s| &s.resource);
    let p_masks = match &principals {
        Some(p) => masks(&p.regions, &|s| &s.principal),
        None => vec![vec![u64::MAX; words]],
    };
    let mut allow_mask = vec![0u64; words];
    for (i, s) in stmts.iter().enumerate() {
        if s.effect == Effect::Allow {
            allow_mask[i / 64] |= 1 << (i % 64);
        }
    }

    // (change, scenarios, principal, action) -> resources
    let mut by_action: BTreeMap<(Change, Vec<Scenario>, usize, usize), Vec<usize>> =
        BTreeMap::new();
    let mut m = vec![0u64; words];
    for (ai, am) in a_masks.iter().enumerate() {
        if !intersects(am, &allow_mask) {
            continue;
        }
        for (ri, rm) in r_masks.iter().enumerate() {
            if !intersects3(am, rm, &allow_mask) {
                continue;
            }
            for (pi, pm) in p_masks.iter().enumerate() {
                for w in 0..words {
                    m[w] = am[w] & rm[w] & pm[w];
                }
                for change in [Change::Added, Change::Removed] {
                    let matching = b.matching(&m, change);
                    if matching.allows.is_empty() {
                        continue;
                    }
                    let mut found = conditions::scenarios(&matching);
                    found.retain(|sc| !conditions::unreachable(sc, &b.atoms.atoms));
                    if found.is_empty() {
                        continue;
                    }
                    if let Some(u) = found.iter().find(|s| s.unconditional()) {
                        found = vec![u.clone()];
                    }
                    by_action
                        .entry((change, found, pi, ai))
                        .or_default()
                        .push(ri);
                }
            }
        }
    }
    // (change, scenarios, principal, resources) -> actions
    let mut boxes: BTreeMap<BoxKey, Vec<usize>> = BTreeMap::new();
    for ((change, sc, pi, ai), rs) in by_action {
        boxes.entry((change, sc, pi, rs)).or_default().push(ai);
    }

    let mut out = PolicyDiff {
        kind,
        added: Vec::new(),
        removed: Vec::new(),
    };
    for ((change, scenarios, pi, rs), as_) in boxes {
        let action_parts = actions.describe_all(&as_);
        let resource_parts = resources.describe_all(&rs);
        let principal_parts: Vec<RegionPart> = match &principals {
            Some(p) => p
                .describe_all(&[pi])
                .into_iter()
                .map(|mut part| {
                    part.example = language::describe_principal_word(&part.example);
                    part
                })
                .collect(),
            None => Vec::new(),
        };
        let candidates = witness::Candidates {
            actions: as_.iter().map(|&i| actions.regions[i].example.clone()),
            resources: rs.iter().map(|&i| resources.regions[i].example.clone()),
            principal: principals.as_ref().map(|p| p.regions[pi].example.clone()),
        };
        let (found, unverified) =
            witness::find(&sets, change, candidates, &scenarios, &b.atoms.atoms);
        let unconditional = scenarios.iter().any(Scenario::unconditional);
        let first = match change {
            Change::Added => Side::New,
            Change::Removed => Side::Old,
        };
        let mut granted_by: Vec<String> = Vec::new();
        for &ai in &as_ {
            for &ri in &rs {
                for (i, s) in stmts.iter().enumerate() {
                    let bit = |m: &[u64]| m[i / 64] & (1 << (i % 64)) != 0;
                    if s.side == first
                        && s.effect == Effect::Allow
                        && bit(&a_masks[ai])
                        && bit(&r_masks[ri])
                        && bit(&p_masks[pi.min(p_masks.len() - 1)])
                        && !granted_by.contains(&s.label)
                    {
                        granted_by.push(s.label.clone());
                    }
                }
            }
        }
        let describe_atoms = |ids: &[AtomId]| -> Vec<String> {
            ids.iter()
                .map(|&id| b.atoms.atoms[id as usize].description.clone())
                .collect()
        };
        let finding = Finding {
            change,
            principals: principal_parts,
            actions: action_parts,
            resources: resource_parts,
            unconditional,
            allowed_by: granted_by,
            conditions: if unconditional {
                Vec::new()
            } else {
                scenarios
                    .iter()
                    .map(|s| ConditionCase {
                        holds: describe_atoms(&s.holds),
                        fails: describe_atoms(&s.fails),
                    })
                    .collect()
            },
            witness: found,
            unverified,
            cover: report::Cover {
                actions: actions.cover(&as_),
                resources: resources.cover(&rs),
                principals: principals.as_ref().map(|p| p.cover(&[pi])),
            },
        };
        match change {
            Change::Added => out.added.push(finding),
            Change::Removed => out.removed.push(finding),
        }
    }
    Ok(out)
}

/// Whether some request in ACTIONS x RESOURCES can be allowed by the policies (all of
/// `kind`): the findings are the regions that can, each with a witness where one was
/// verified. Empty when the policies never allow any such request.
pub fn check_not_granted(
    policies: &[(&str, &Policy)],
    kind: PolicyKind,
    actions: &[String],
    resources: &[String],
) -> Result<Vec<Finding>, DiffError> {
    let scope = DiffScope {
        actions: Some(actions.to_vec()),
        resources: Some(resources.to_vec()),
    };
    Ok(diff(&[], policies, kind, &scope)?.added)
}

/// A finding before it is described: change, condition scenarios, principal region and
/// resource regions (its action regions are the value).
type BoxKey = (Change, Vec<Scenario>, usize, Vec<usize>);

fn intersects(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

fn intersects3(a: &[u64], b: &[u64], c: &[u64]) -> bool {
    a.iter().zip(b).zip(c).any(|((x, y), z)| x & y & z != 0)
}

/// OLD or NEW.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Old,
    New,
}

/// A statement, reduced to what the comparison needs.
#[derive(Debug, Clone)]
struct Stmt {
    /// `NEW name Statement[i] (Sid "x")`.
    label: String,
    side: Side,
    effect: Effect,
    atom: AtomId,
    action: StmtLang,
    resource: StmtLang,
    principal: StmtLang,
}

/// A statement's element in one dimension: a union of interned patterns, or its
/// complement.
#[derive(Debug, Clone)]
struct StmtLang {
    negated: bool,
    patterns: Vec<usize>,
}

impl StmtLang {
    /// Every string.
    fn everything() -> StmtLang {
        StmtLang {
            negated: true,
            patterns: Vec::new(),
        }
    }

    /// True when the region lies inside.
    fn contains(&self, r: &Region) -> bool {
        self.negated != self.patterns.iter().any(|&p| r.inside[p])
    }
}

/// The interned patterns of one dimension.
#[derive(Debug, Default)]
struct Dimension {
    patterns: Vec<Vec<automaton::Sym>>,
    display: Vec<String>,
    index: HashMap<Vec<automaton::Sym>, usize>,
}

/// A dimension's partition, with the automata it was made from.
struct Partitioned {
    alphabet: Arc<Alphabet>,
    dfas: Arc<Vec<Dfa>>,
    /// How every string of the dimension reads: `any action`, or the scope's patterns.
    anything: String,
    /// Each pattern as written.
    display: Vec<String>,
    /// Patterns that are part of the scope, not of a policy.
    scope: Vec<bool>,
    regions: Vec<Region>,
}

impl Dimension {
    /// Interns each pattern of a language; the element is their union (or its complement).
    fn intern_all(&mut self, lang: &Lang) -> StmtLang {
        let patterns = lang
            .patterns
            .iter()
            .zip(&lang.texts)
            .map(|(p, text)| match self.index.get(p) {
                Some(&i) => i,
                None => {
                    self.patterns.push(p.clone());
                    self.display.push(text.clone());
                    self.index.insert(p.clone(), self.patterns.len() - 1);
                    self.patterns.len() - 1
                }
            })
            .collect();
        StmtLang {
            negated: lang.negated,
            patterns,
        }
    }

    /// Partitions every string (or those of `scope`) by every pattern.
    fn regions(
        &self,
        scope: Option<&StmtLang>,
        anything: &str,
        dimension: &'static str,
    ) -> Result<Partitioned, DiffError> {
        let too_complex = |_| DiffError::TooComplex {
            dimension,
            limit: automaton::MAX_STATES,
        };
        let alphabet = Alphabet::new(self.patterns.iter().map(Vec::as_slice));
        let dfas: Vec<Dfa> = self
            .patterns
            .iter()
            .map(|p| Dfa::from_patterns(&alphabet, std::slice::from_ref(p)))
            .collect::<Result<_, _>>()
            .map_err(too_complex)?;
        let mut regions =
            partition::partition(&alphabet, &self.patterns, &dfas).map_err(too_complex)?;
        let mut in_scope = vec![false; self.patterns.len()];
        let anything = match scope {
            Some(s) => {
                regions.retain(|r| s.contains(r));
                for &p in &s.patterns {
                    in_scope[p] = true;
                }
                if anything.starts_with("anyone") {
                    anything.to_string()
                } else {
                    join(s.patterns.iter().map(|&i| self.display[i].as_str()), " | ")
                }
            }
            None => anything.to_string(),
        };
        Ok(Partitioned {
            alphabet: Arc::new(alphabet),
            dfas: Arc::new(dfas),
            anything,
            display: self.display.clone(),
            scope: in_scope,
            regions,
        })
    }
}

impl Partitioned {
    /// The patterns a region lies within and outside of, without the redundant ones.
    /// Several regions: as one pattern of the dimension, or one pattern except another,
    /// when their union is exactly that. Every pattern is the union of the regions inside
    /// it, so this compares sets of regions.
    fn describe_all(&self, regions: &[usize]) -> Vec<RegionPart> {
        if regions.len() > 1 {
            let example = self.regions[regions[0]].example.clone();
            let part = |description: String| {
                vec![RegionPart {
                    description,
                    example: example.clone(),
                }]
            };
            let chosen: Vec<bool> = (0..self.regions.len())
                .map(|i| regions.contains(&i))
                .collect();
            if chosen.iter().all(|&c| c) {
                return part(self.anything.clone());
            }
            let m = self.display.len();
            let is_set = |f: &dyn Fn(&Region) -> bool| {
                self.regions.iter().zip(&chosen).all(|(r, &c)| f(r) == c)
            };
            // Patterns containing every chosen region.
            let containing: Vec<usize> = (0..m)
                .filter(|&j| !self.scope[j] && regions.iter().all(|&i| self.regions[i].inside[j]))
                .collect();
            for &j in &containing {
                if is_set(&|r| r.inside[j]) {
                    return part(self.display[j].clone());
                }
            }
            for &j in &containing {
                for k in (0..m).filter(|&k| k != j && !self.scope[k]) {
                    if regions.iter().all(|&i| !self.regions[i].inside[k])
                        && is_set(&|r| r.inside[j] && !r.inside[k])
                    {
                        return part(format!("{} except {}", self.display[j], self.display[k]));
                    }
                }
            }
        }
        regions.iter().map(|&i| self.describe(i)).collect()
    }

    fn cover(&self, regions: &[usize]) -> report::DimensionCover {
        report::DimensionCover {
            alphabet: self.alphabet.clone(),
            patterns: self.dfas.clone(),
            signatures: regions
                .iter()
                .map(|&i| self.regions[i].inside.clone())
                .collect(),
        }
    }

    fn describe(&self, i: usize) -> RegionPart {
        let anything = self.anything.as_str();
        let r = &self.regions[i];
        let mut within: Vec<usize> = Vec::new();
        let sub = |a: usize, b: usize| !self.dfas[a].overlap(&self.dfas[b]).1;
        for &w in &r.within {
            // Keep only the narrowest languages (the first of equal ones).
            if r.within
                .iter()
                .any(|&o| o != w && sub(o, w) && (!sub(w, o) || o < w))
            {
                continue;
            }
            within.push(w);
        }
        let except: Vec<usize> = r
            .except
            .iter()
            .copied()
            .filter(|&e| {
                !within
                    .iter()
                    .any(|&w| !self.dfas[w].overlap(&self.dfas[e]).0)
            })
            .collect();
        let inside: Vec<&str> = within.iter().map(|&i| self.display[i].as_str()).collect();
        let outside: Vec<&str> = except
            .iter()
            .filter(|&&i| !self.scope[i])
            .map(|&i| self.display[i].as_str())
            .collect();
        let mut text = if inside.is_empty() {
            anything.to_string()
        } else {
            join(inside.into_iter(), " and ")
        };
        const LISTED: usize = 4;
        if outside.len() > LISTED && r.within.is_empty() {
            text.push_str(&format!(
                " matched by none of the {} patterns of the policies",
                outside.len()
            ));
        } else if !outside.is_empty() {
            text.push_str(" except ");
            text.push_str(&join(outside.into_iter(), ", "));
        }
        RegionPart {
            description: text,
            example: r.example.clone(),
        }
    }
}

fn join<'a>(items: impl Iterator<Item = &'a str>, sep: &str) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for i in items {
        if !seen.contains(&i) {
            seen.push(i);
        }
    }
    seen.join(sep)
}

/// Collects the statements of both sides.
struct Builder {
    kind: PolicyKind,
    statements: Vec<Stmt>,
    atoms: Atoms,
    actions: Dimension,
    resources: Dimension,
    principals: Dimension,
}

impl Builder {
    fn new(kind: PolicyKind) -> Builder {
        let principals = Dimension::default();
        Builder {
            kind,
            statements: Vec::new(),
            atoms: Atoms::new(),
            actions: Dimension::default(),
            resources: Dimension::default(),
            principals,
        }
    }

    fn add_policy(&mut self, side: Side, name: &str, policy: &Policy) {
        let expand = policy.effective_version() == Version::V2012_10_17;
        let side_name = match side {
            Side::Old => "OLD",
            Side::New => "NEW",
        };
        for (i, st) in policy.statements.iter().enumerate() {
            let label = match &st.sid {
                Some(sid) => format!("{side_name} {name} Statement[{i}] (Sid {sid:?})"),
                None => format!("{side_name} {name} Statement[{i}]"),
            };
            let action = self.actions.intern_all(&language::actions(&st.action));
            let (rlang, resource_vars) = language::resources(&st.resource, st.effect, expand);
            let resource = self.resources.intern_all(&rlang);
            let (principal, not_principal) = match (&st.principal, self.kind) {
                (Some(p), PolicyKind::Resource) => match language::principals(p, st.effect) {
                    Some(lang) => (self.principals.intern_all(&lang), false),
                    None => (StmtLang::everything(), true),
                },
                _ => (StmtLang::everything(), false),
            };
            let condition_vars: Vec<String> = if expand {
                st.conditions
                    .iter()
                    .filter(|c| c.operator.kind.expands_variables())
                    .flat_map(|c| c.values.iter())
                    .filter(|v| language::has_required_var(v))
                    .flat_map(|v| var_names(v))
                    .collect()
            } else {
                Vec::new()
            };
            let atom = if resource_vars || not_principal || !condition_vars.is_empty() {
                let mut variables = condition_vars;
                if resource_vars {
                    for p in &st.resource.patterns {
                        variables.extend(var_names(p));
                    }
                }
                variables.sort();
                variables.dedup();
                let mut parts = Vec::new();
                if !variables.is_empty() {
                    let element = if st.resource.negated {
                        "NotResource"
                    } else {
                        "Resource"
                    };
                    parts.push(format!(
                        "{element} {} applies with the request's {}",
                        st.resource.patterns.join(" | "),
                        variables
                            .iter()
                            .map(|v| format!("${{{v}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if not_principal {
                    parts.push("the caller is not exempted by NotPrincipal".into());
                }
                if !st.conditions.is_empty() {
                    parts.push(conditions::describe_block(&st.conditions));
                }
                let mut block: Vec<String> = st
                    .conditions
                    .iter()
                    .map(|c| {
                        format!(
                            "{}|{}|{:?}",
                            c.operator,
                            c.key.to_ascii_lowercase(),
                            c.values
                        )
                    })
                    .collect();
                block.sort();
                let key = format!(
                    "{:?}|{}|{:?}|{:?}|{:?}|{block:?}",
                    st.effect, expand, st.resource, st.principal, variables
                );
                self.atoms.keyed(
                    key,
                    conditions::Atom {
                        description: parts.join(" and "),
                        conditions: st.conditions.clone(),
                        variables,
                        opaque: true,
                    },
                )
            } else {
                self.atoms.block(&st.conditions, expand)
            };
            self.statements.push(Stmt {
                label,
                side,
                effect: st.effect,
                atom,
                action,
                resource,
                principal,
            });
        }
    }

    /// The atoms of the statements in `mask`, arranged for `change`.
    fn matching(&self, mask: &[u64], change: Change) -> Matching {
        let mut m = Matching::default();
        let first = match change {
            Change::Added => Side::New,
            Change::Removed => Side::Old,
        };
        for (w, &bits) in mask.iter().enumerate() {
            let mut bits = bits;
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(s) = self.statements.get(i) else {
                    continue;
                };
                let list = match (s.side == first, s.effect) {
                    (true, Effect::Allow) => &mut m.allows,
                    (true, Effect::Deny) => &mut m.denies,
                    (false, Effect::Allow) => &mut m.other_allows,
                    (false, Effect::Deny) => &mut m.other_denies,
                };
                list.push(s.atom);
            }
        }
        m
    }
}

/// The names of the policy variables in a value (keys as written).
fn var_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        if !matches!(inner, "*" | "?" | "$") {
            let key = inner.split(',').next().unwrap_or(inner).trim();
            if !key.is_empty() {
                out.push(key.to_string());
            }
        }
        rest = &after[end + 1..];
    }
    out
}

#[cfg(test)]
mod tests;
