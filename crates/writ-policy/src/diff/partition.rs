//! The partition of one string dimension into regions that every pattern of the dimension
//! either contains whole or misses whole.
//!
//! A region is known by its signature: which patterns contain it. Patterns are grouped
//! into components of patterns that overlap (two patterns whose literal prefixes or
//! suffixes disagree never do, which settles most pairs without an automaton); each
//! component is refined pattern by pattern with automata, and everything outside every
//! pattern is one more region. Patterns that match every string (`*`) contain every region
//! and split none.

use crate::diff::automaton::{Alphabet, Dfa, Sym, TooComplex};

/// One region of a partition.
#[derive(Debug, Clone)]
pub(crate) struct Region {
    /// A shortest string of the region (for the region outside every pattern: a short one).
    pub(crate) example: String,
    /// For each pattern (by index), whether the region lies inside it.
    pub(crate) inside: Vec<bool>,
    /// Patterns that carved this region out, from their inside.
    pub(crate) within: Vec<usize>,
    /// Patterns that carved this region out, from their outside.
    pub(crate) except: Vec<usize>,
}

/// The leading literal characters of a pattern.
fn prefix(p: &[Sym]) -> Vec<char> {
    p.iter()
        .map_while(|s| match s {
            Sym::Lit(c) => Some(*c),
            _ => None,
        })
        .collect()
}

/// The trailing literal characters of a pattern, last first.
fn suffix(p: &[Sym]) -> Vec<char> {
    p.iter()
        .rev()
        .map_while(|s| match s {
            Sym::Lit(c) => Some(*c),
            _ => None,
        })
        .collect()
}

fn compatible(a: &[char], b: &[char]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// Union-find root.
fn root(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Partitions every string by `patterns` (each with its automaton).
pub(crate) fn partition(
    alphabet: &Alphabet,
    patterns: &[Vec<Sym>],
    dfas: &[Dfa],
) -> Result<Vec<Region>, TooComplex> {
    let m = patterns.len();
    let universal: Vec<bool> = dfas.iter().map(Dfa::is_universal).collect();
    let empty: Vec<bool> = dfas
        .iter()
        .map(|d| d.shortest(alphabet).is_none())
        .collect();
    let live: Vec<usize> = (0..m).filter(|&i| !universal[i] && !empty[i]).collect();
    let prefixes: Vec<Vec<char>> = patterns.iter().map(|p| prefix(p)).collect();
    let suffixes: Vec<Vec<char>> = patterns.iter().map(|p| suffix(p)).collect();
    // overlaps[i] lists the live patterns that share a string with pattern i.
    let mut overlaps: Vec<Vec<usize>> = vec![Vec::new(); m];
    let mut parent: Vec<usize> = (0..m).collect();
    for (x, &i) in live.iter().enumerate() {
        for &j in &live[x + 1..] {
            if !compatible(&prefixes[i], &prefixes[j]) || !compatible(&suffixes[i], &suffixes[j]) {
                continue;
            }
            if dfas[i].overlap(&dfas[j]).0 {
                overlaps[i].push(j);
                overlaps[j].push(i);
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut components: Vec<Vec<usize>> = Vec::new();
    let mut component_of: Vec<Option<usize>> = vec![None; m];
    for &i in &live {
        let r = root(&mut parent, i);
        let c = match component_of[r] {
            Some(c) => c,
            None => {
                components.push(Vec::new());
                component_of[r] = Some(components.len() - 1);
                components.len() - 1
            }
        };
        components[c].push(i);
    }
    let base: Vec<bool> = universal.clone();
    let mut regions = Vec::new();
    for comp in &components {
        regions.extend(refine(alphabet, comp, dfas, &overlaps, &base)?);
    }
    if let Some(example) = outside_example(alphabet, patterns, dfas, &live)? {
        regions.push(Region {
            example,
            inside: base,
            within: Vec::new(),
            except: live,
        });
    }
    Ok(regions)
}

/// A region with its automaton, while its component is refined.
struct Building {
    dfa: Dfa,
    region: Region,
}

/// Refines the union of one component's patterns, pattern by pattern.
fn refine(
    alphabet: &Alphabet,
    comp: &[usize],
    dfas: &[Dfa],
    overlaps: &[Vec<usize>],
    base: &[bool],
) -> Result<Vec<Region>, TooComplex> {
    let mut parts: Vec<Building> = Vec::new();
    let mut seen: Vec<usize> = Vec::new();
    for &p in comp {
        let lang = &dfas[p];
        let mut next = Vec::with_capacity(parts.len() + 1);
        for mut b in parts {
            let overlapping = b.region.within.iter().all(|w| overlaps[*w].contains(&p));
            let (some_in, some_out) = if !overlapping {
                (false, true)
            } else if lang.accepts(alphabet, &b.region.example) {
                (true, b.dfa.overlap(lang).1)
            } else {
                (b.dfa.overlap(lang).0, true)
            };
            match (some_in, some_out) {
                (true, true) => {
                    let dfa_in = b.dfa.intersect(lang)?;
                    let dfa_out = b.dfa.subtract(lang)?;
                    let mut r_in = b.region.clone();
                    r_in.example = dfa_in.shortest(alphabet).unwrap_or_default();
                    r_in.inside[p] = true;
                    r_in.within.push(p);
                    b.region.example = dfa_out.shortest(alphabet).unwrap_or_default();
                    b.region.except.push(p);
                    b.dfa = dfa_out;
                    next.push(Building {
                        dfa: dfa_in,
                        region: r_in,
                    });
                    next.push(b);
                }
                (inside, _) => {
                    b.region.inside[p] = inside;
                    next.push(b);
                }
            }
        }
        // The part of the pattern outside every earlier pattern of the component.
        let earlier: Vec<usize> = seen
            .iter()
            .copied()
            .filter(|s| overlaps[p].contains(s))
            .collect();
        let mut rest = lang.clone();
        for &e in &earlier {
            rest = rest.subtract(&dfas[e])?;
        }
        if let Some(example) = rest.shortest(alphabet) {
            let mut inside = base.to_vec();
            inside[p] = true;
            next.push(Building {
                dfa: rest,
                region: Region {
                    example,
                    inside,
                    within: vec![p],
                    except: earlier,
                },
            });
        }
        seen.push(p);
        parts = next;
    }
    Ok(parts.into_iter().map(|b| b.region).collect())
}

/// A string no live pattern matches, or `None` when together they match every string.
fn outside_example(
    alphabet: &Alphabet,
    patterns: &[Vec<Sym>],
    dfas: &[Dfa],
    live: &[usize],
) -> Result<Option<String>, TooComplex> {
    let other = alphabet.char_of(alphabet.len() - 1);
    let tries = [String::new(), other.to_string(), format!("{other}{other}")];
    for t in tries {
        if live.iter().all(|&i| !dfas[i].accepts(alphabet, &t)) {
            return Ok(Some(t));
        }
    }
    // The exact way: the complement of the union.
    let all: Vec<Vec<Sym>> = live.iter().map(|&i| patterns[i].clone()).collect();
    Ok(Dfa::from_patterns(alphabet, &all)?
        .complement()
        .shortest(alphabet))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::language::glob;

    #[test]
    fn regions_are_disjoint_and_cover() {
        let pats: Vec<Vec<Sym>> = [
            "s3:get*",
            "s3:getobject",
            "s3:*",
            "s3:?etobject",
            "*",
            "ec2:x",
        ]
        .iter()
        .map(|p| glob(p))
        .collect();
        let a = Alphabet::new(pats.iter().map(Vec::as_slice));
        let dfas: Vec<Dfa> = pats
            .iter()
            .map(|p| Dfa::from_patterns(&a, std::slice::from_ref(p)).unwrap())
            .collect();
        let regions = partition(&a, &pats, &dfas).unwrap();
        let signature = |w: &str| -> Vec<bool> { dfas.iter().map(|d| d.accepts(&a, w)).collect() };
        for w in [
            "s3:getobject",
            "s3:getbucket",
            "s3:letobject",
            "ec2:run",
            "ec2:x",
            "",
            "s3:",
        ] {
            let holding: Vec<&Region> = regions
                .iter()
                .filter(|r| r.inside == signature(w))
                .collect();
            assert_eq!(holding.len(), 1, "{w} in exactly one region");
        }
        for r in &regions {
            assert_eq!(r.inside, signature(&r.example), "{r:?}");
        }
        // outside, s3:* only, s3:?etobject only, s3:get* only, s3:getobject, ec2:x.
        assert_eq!(regions.len(), 6);
    }
}
