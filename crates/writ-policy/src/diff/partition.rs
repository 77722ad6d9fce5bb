//! The partition of one string dimension into regions that every language of the
//! dimension either contains whole or misses whole.
//!
//! Refining a region by a language splits it into the part inside and the part outside,
//! when both are non-empty. After every language, two strings of one region are matched
//! by exactly the same statements, so one witness string speaks for the whole region.

use crate::diff::automaton::{Alphabet, Dfa};

/// One region of a partition.
#[derive(Debug, Clone)]
pub(crate) struct Region {
    /// The strings of the region.
    pub(crate) dfa: Dfa,
    /// A shortest string of the region.
    pub(crate) example: String,
    /// For each language (by index), whether the region lies inside it.
    pub(crate) inside: Vec<bool>,
    /// The languages that split a larger region into this one, from its inside.
    pub(crate) within: Vec<usize>,
    /// The languages that split a larger region into this one, from its outside.
    pub(crate) except: Vec<usize>,
}

/// Partitions `universe` by `langs`.
pub(crate) fn partition(alphabet: &Alphabet, universe: Dfa, langs: &[Dfa]) -> Vec<Region> {
    let Some(example) = universe.shortest(alphabet) else {
        return Vec::new();
    };
    let mut regions = vec![Region {
        dfa: universe,
        example,
        inside: Vec::with_capacity(langs.len()),
        within: Vec::new(),
        except: Vec::new(),
    }];
    for (j, lang) in langs.iter().enumerate() {
        let outside = lang.complement();
        let mut next = Vec::with_capacity(regions.len() + 1);
        for mut r in regions {
            let (some_in, some_out) = if lang.accepts(alphabet, &r.example) {
                (true, r.dfa.overlap(&outside).0)
            } else {
                (r.dfa.overlap(lang).0, true)
            };
            match (some_in, some_out) {
                (true, true) => {
                    let dfa_in = r.dfa.intersect(lang);
                    let dfa_out = r.dfa.subtract(lang);
                    let mut r_in = Region {
                        example: dfa_in.shortest(alphabet).unwrap_or_default(),
                        dfa: dfa_in,
                        inside: r.inside.clone(),
                        within: r.within.clone(),
                        except: r.except.clone(),
                    };
                    r_in.inside.push(true);
                    r_in.within.push(j);
                    r.example = dfa_out.shortest(alphabet).unwrap_or_default();
                    r.dfa = dfa_out;
                    r.inside.push(false);
                    r.except.push(j);
                    next.push(r_in);
                    next.push(r);
                }
                (inside, _) => {
                    r.inside.push(inside);
                    next.push(r);
                }
            }
        }
        regions = next;
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::automaton::Sym;
    use crate::diff::language::glob;

    #[test]
    fn regions_are_disjoint_and_cover() {
        let pats: Vec<Vec<Sym>> = ["s3:get*", "s3:getobject", "s3:*", "s3:?etobject"]
            .iter()
            .map(|p| glob(p))
            .collect();
        let a = Alphabet::new(pats.iter().map(Vec::as_slice));
        let langs: Vec<Dfa> = pats
            .iter()
            .map(|p| Dfa::from_patterns(&a, std::slice::from_ref(p)))
            .collect();
        let regions = partition(&a, Dfa::everything(&a), &langs);
        for w in [
            "s3:getobject",
            "s3:getbucket",
            "s3:letobject",
            "ec2:run",
            "",
            "s3:",
        ] {
            let holding: Vec<&Region> = regions.iter().filter(|r| r.dfa.accepts(&a, w)).collect();
            assert_eq!(holding.len(), 1, "{w} in exactly one region");
            for (j, lang) in langs.iter().enumerate() {
                assert_eq!(holding[0].inside[j], lang.accepts(&a, w), "{w} vs {j}");
            }
        }
        // everything else, s3:* only, s3:?etobject only, s3:get* only, s3:getobject.
        assert_eq!(regions.len(), 5);
    }
}
