//! Deterministic finite automata over a small alphabet, and the operations `diff` needs:
//! building one from patterns, intersecting and subtracting by product construction,
//! minimising, testing emptiness and finding a shortest accepted word.
//!
//! The alphabet is the set of characters the patterns of one dimension name literally, plus
//! one symbol that stands for every other character (see [`Alphabet`]). Two characters
//! outside the set behave alike under every pattern, so a language over this alphabet says
//! exactly which strings the patterns accept.

use std::collections::VecDeque;

/// foldhash: several times faster than SipHash on these small keys.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// One element of a pattern: what the next characters must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Sym {
    /// This one character.
    Lit(char),
    /// Any one character (`?`).
    One,
    /// Any run of characters, including none (`*`).
    Star,
    /// Any run of characters none of which is this one (`[^:]*`, for ARN parts).
    StarExcept(char),
}

/// The characters of one dimension's patterns, plus "any other character".
#[derive(Debug, Clone)]
pub(crate) struct Alphabet {
    /// Sorted, without duplicates.
    chars: Vec<char>,
    /// The character that stands for the "other" symbol in witnesses.
    other: char,
}

impl Alphabet {
    /// The alphabet of these patterns. `prefer_lower` picks a lower-case stand-in for
    /// "other characters" (actions are compared lower-cased).
    pub(crate) fn new<'a>(patterns: impl IntoIterator<Item = &'a [Sym]>) -> Alphabet {
        let mut chars: Vec<char> = patterns
            .into_iter()
            .flat_map(|p| p.iter())
            .filter_map(|s| match s {
                Sym::Lit(c) | Sym::StarExcept(c) => Some(*c),
                Sym::One | Sym::Star => None,
            })
            .collect();
        chars.sort_unstable();
        chars.dedup();
        let other = "xyzqkwjv0123456789_abcdefghilmnoprstu"
            .chars()
            .chain(('\u{e0}'..='\u{ff}').filter(|c| c.is_lowercase()))
            .find(|c| chars.binary_search(c).is_err())
            .unwrap_or('\u{2603}');
        Alphabet { chars, other }
    }

    /// The number of symbols, "other" included.
    pub(crate) fn len(&self) -> usize {
        self.chars.len() + 1
    }

    /// The symbol of a character.
    pub(crate) fn symbol(&self, c: char) -> usize {
        self.chars.binary_search(&c).unwrap_or(self.chars.len())
    }

    /// A character of a symbol: itself, or the stand-in for "other".
    pub(crate) fn char_of(&self, symbol: usize) -> char {
        self.chars.get(symbol).copied().unwrap_or(self.other)
    }
}

/// The most states one automaton may have. Some patterns need exponentially many
/// (`*a????????????????????`: "the 21st character from the end is `a`"); past this bound the
/// comparison is refused rather than left to run out of memory.
pub(crate) const MAX_STATES: usize = 20_000;

/// An automaton would need more than [`MAX_STATES`] states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooComplex;

/// A complete DFA: state 0 is the start; every state has a transition on every symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dfa {
    symbols: usize,
    /// `trans[state * symbols + symbol]`.
    trans: Vec<u32>,
    accept: Vec<bool>,
}

/// Flattened NFA position: (pattern, tokens matched so far).
type Pos = (u32, u32);

impl Dfa {
    /// The union of the patterns' languages, by subset construction.
    pub(crate) fn from_patterns(
        alphabet: &Alphabet,
        patterns: &[Vec<Sym>],
    ) -> Result<Dfa, TooComplex> {
        let n = alphabet.len();
        let closure = |set: &mut Vec<Pos>| {
            let mut i = 0;
            while i < set.len() {
                let (p, at) = set[i];
                if let Some(Sym::Star | Sym::StarExcept(_)) = patterns[p as usize].get(at as usize)
                    && !set.contains(&(p, at + 1))
                {
                    set.push((p, at + 1));
                }
                i += 1;
            }
            set.sort_unstable();
            set.dedup();
        };
        let mut start: Vec<Pos> = (0..patterns.len() as u32).map(|p| (p, 0)).collect();
        closure(&mut start);
        let mut ids: HashMap<Vec<Pos>, u32> = HashMap::default();
        let mut sets = vec![start.clone()];
        ids.insert(start, 0);
        let mut trans = Vec::new();
        let mut accept = Vec::new();
        let mut next_set = 0;
        while next_set < sets.len() {
            let set = sets[next_set].clone();
            next_set += 1;
            accept.push(
                set.iter()
                    .any(|&(p, at)| at as usize == patterns[p as usize].len()),
            );
            for sym in 0..n {
                let mut to: Vec<Pos> = Vec::new();
                for &(p, at) in &set {
                    let Some(tok) = patterns[p as usize].get(at as usize) else {
                        continue;
                    };
                    match *tok {
                        Sym::Lit(c) if alphabet.symbol(c) == sym => to.push((p, at + 1)),
                        Sym::One => to.push((p, at + 1)),
                        Sym::Star => to.push((p, at)),
                        Sym::StarExcept(c) if alphabet.symbol(c) != sym => to.push((p, at)),
                        _ => {}
                    }
                }
                closure(&mut to);
                let id = match ids.get(&to) {
                    Some(&id) => id,
                    None if sets.len() >= MAX_STATES => return Err(TooComplex),
                    None => {
                        let id = sets.len() as u32;
                        ids.insert(to.clone(), id);
                        sets.push(to);
                        id
                    }
                };
                trans.push(id);
            }
        }
        Ok(Dfa {
            symbols: n,
            trans,
            accept,
        })
    }

    /// The complement.
    pub(crate) fn complement(&self) -> Dfa {
        Dfa {
            symbols: self.symbols,
            trans: self.trans.clone(),
            accept: self.accept.iter().map(|a| !a).collect(),
        }
    }

    fn states(&self) -> usize {
        self.accept.len()
    }

    fn step(&self, state: u32, symbol: usize) -> u32 {
        self.trans[state as usize * self.symbols + symbol]
    }

    /// Walks the reachable part of the product of `self` and `other` and reports whether
    /// some word is in both, and whether some word is in `self` but not in `other`.
    pub(crate) fn overlap(&self, other: &Dfa) -> (bool, bool) {
        let (mut both, mut only_self) = (false, false);
        let mut seen: HashMap<(u32, u32), ()> = HashMap::default();
        let mut queue = VecDeque::from([(0u32, 0u32)]);
        seen.insert((0, 0), ());
        while let Some((a, b)) = queue.pop_front() {
            if self.accept[a as usize] {
                if other.accept[b as usize] {
                    both = true;
                } else {
                    only_self = true;
                }
                if both && only_self {
                    break;
                }
            }
            for s in 0..self.symbols {
                let next = (self.step(a, s), other.step(b, s));
                if seen.insert(next, ()).is_none() {
                    queue.push_back(next);
                }
            }
        }
        (both, only_self)
    }

    /// The product automaton accepting the words `keep(in self, in other)` says.
    pub(crate) fn product(
        &self,
        other: &Dfa,
        keep: impl Fn(bool, bool) -> bool,
    ) -> Result<Dfa, TooComplex> {
        let mut ids: HashMap<(u32, u32), u32> = HashMap::default();
        let mut pairs = vec![(0u32, 0u32)];
        ids.insert((0, 0), 0);
        let mut trans = Vec::new();
        let mut accept = Vec::new();
        let mut i = 0;
        while i < pairs.len() {
            let (a, b) = pairs[i];
            i += 1;
            accept.push(keep(self.accept[a as usize], other.accept[b as usize]));
            for s in 0..self.symbols {
                let next = (self.step(a, s), other.step(b, s));
                let id = *ids.entry(next).or_insert_with(|| {
                    pairs.push(next);
                    (pairs.len() - 1) as u32
                });
                trans.push(id);
            }
            if pairs.len() > MAX_STATES {
                return Err(TooComplex);
            }
        }
        Ok(Dfa {
            symbols: self.symbols,
            trans,
            accept,
        }
        .trim())
    }

    /// The words in both.
    pub(crate) fn intersect(&self, other: &Dfa) -> Result<Dfa, TooComplex> {
        self.product(other, |a, b| a && b)
    }

    /// The words in `self` and not in `other`.
    pub(crate) fn subtract(&self, other: &Dfa) -> Result<Dfa, TooComplex> {
        self.product(other, |a, b| a && !b)
    }

    /// The words in either.
    #[cfg(test)]
    pub(crate) fn union(&self, other: &Dfa) -> Result<Dfa, TooComplex> {
        self.product(other, |a, b| a || b)
    }

    /// True when no word is accepted.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.shortest_symbols().is_none()
    }

    /// True when every word is accepted.
    pub(crate) fn is_universal(&self) -> bool {
        let mut seen = vec![false; self.states()];
        let mut stack = vec![0u32];
        seen[0] = true;
        while let Some(s) = stack.pop() {
            if !self.accept[s as usize] {
                return false;
            }
            for sym in 0..self.symbols {
                let t = self.step(s, sym);
                if !seen[t as usize] {
                    seen[t as usize] = true;
                    stack.push(t);
                }
            }
        }
        true
    }

    /// True when `word` is accepted.
    pub(crate) fn accepts(&self, alphabet: &Alphabet, word: &str) -> bool {
        let mut state = 0;
        for c in word.chars() {
            state = self.step(state, alphabet.symbol(c));
        }
        self.accept[state as usize]
    }

    /// A shortest accepted word, as symbols (breadth first, lower symbols first).
    fn shortest_symbols(&self) -> Option<Vec<usize>> {
        let mut prev: Vec<Option<(u32, usize)>> = vec![None; self.states()];
        let mut seen = vec![false; self.states()];
        seen[0] = true;
        let mut queue = VecDeque::from([0u32]);
        while let Some(s) = queue.pop_front() {
            if self.accept[s as usize] {
                let mut word = Vec::new();
                let mut at = s;
                while let Some((p, sym)) = prev[at as usize] {
                    word.push(sym);
                    at = p;
                }
                word.reverse();
                return Some(word);
            }
            for sym in 0..self.symbols {
                let t = self.step(s, sym);
                if !seen[t as usize] {
                    seen[t as usize] = true;
                    prev[t as usize] = Some((s, sym));
                    queue.push_back(t);
                }
            }
        }
        None
    }

    /// A shortest accepted word, with "other" spelled as the alphabet's stand-in.
    pub(crate) fn shortest(&self, alphabet: &Alphabet) -> Option<String> {
        self.shortest_symbols()
            .map(|w| w.into_iter().map(|s| alphabet.char_of(s)).collect())
    }

    /// Merges every state from which no word is accepted into one dead state, and drops
    /// unreachable states: products stay about as small as their operands, at linear cost.
    pub(crate) fn trim(self) -> Dfa {
        let n = self.states();
        let k = self.symbols;
        // Reverse edges, then the states that can reach an accepting one.
        let mut rev_start = vec![0u32; n + 1];
        for &t in &self.trans {
            rev_start[t as usize + 1] += 1;
        }
        for i in 0..n {
            rev_start[i + 1] += rev_start[i];
        }
        let mut fill = rev_start.clone();
        let mut rev = vec![0u32; self.trans.len()];
        for (i, &t) in self.trans.iter().enumerate() {
            rev[fill[t as usize] as usize] = (i / k) as u32;
            fill[t as usize] += 1;
        }
        let mut live = self.accept.clone();
        let mut stack: Vec<u32> = (0..n as u32).filter(|&s| live[s as usize]).collect();
        while let Some(s) = stack.pop() {
            for &p in &rev[rev_start[s as usize] as usize..rev_start[s as usize + 1] as usize] {
                if !live[p as usize] {
                    live[p as usize] = true;
                    stack.push(p);
                }
            }
        }
        if live.iter().all(|&l| l) && n <= 1 {
            return self;
        }
        // Renumber: live states reachable from the start, then one dead state if needed.
        let mut id: Vec<u32> = vec![u32::MAX; n];
        let mut order: Vec<usize> = Vec::new();
        let mut dead: Option<u32> = None;
        let mut queue = VecDeque::new();
        if live[0] {
            id[0] = 0;
            order.push(0);
            queue.push_back(0usize);
        } else {
            dead = Some(0);
        }
        while let Some(s) = queue.pop_front() {
            for sym in 0..k {
                let t = self.trans[s * k + sym] as usize;
                if live[t] && id[t] == u32::MAX {
                    id[t] = order.len() as u32;
                    order.push(t);
                    queue.push_back(t);
                }
            }
        }
        let dead_id = *dead.get_or_insert(order.len() as u32);
        let total = order.len() + usize::from(dead_id as usize == order.len());
        let mut trans = Vec::with_capacity(total * k);
        let mut accept = Vec::with_capacity(total);
        for &s in &order {
            accept.push(self.accept[s]);
            for sym in 0..k {
                let t = self.trans[s * k + sym] as usize;
                trans.push(if live[t] { id[t] } else { dead_id });
            }
        }
        if dead_id as usize == order.len() {
            accept.push(false);
            trans.extend(std::iter::repeat_n(dead_id, k));
        }
        Dfa {
            symbols: k,
            trans,
            accept,
        }
    }

    /// A minimal equivalent automaton (Moore's partition refinement), with unreachable
    /// states dropped: a canonical form, so equal languages give equal automata.
    #[cfg(test)]
    pub(crate) fn minimize(self) -> Dfa {
        let n = self.states();
        let k = self.symbols;
        let mut class: Vec<u32> = self.accept.iter().map(|&a| u32::from(a)).collect();
        let mut count = {
            let mut c = class.clone();
            c.sort_unstable();
            c.dedup();
            c.len()
        };
        loop {
            let mut ids: HashMap<Vec<u32>, u32> =
                HashMap::with_capacity_and_hasher(n, Default::default());
            let mut next = Vec::with_capacity(n);
            for s in 0..n {
                let mut sig = Vec::with_capacity(k + 1);
                sig.push(class[s]);
                sig.extend((0..k).map(|sym| class[self.trans[s * k + sym] as usize]));
                let len = ids.len() as u32;
                next.push(*ids.entry(sig).or_insert(len));
            }
            let new_count = ids.len();
            class = next;
            if new_count == count {
                break;
            }
            count = new_count;
        }
        // Renumber from the start state, breadth first, so state 0 is the start.
        let mut order: Vec<Option<u32>> = vec![None; count];
        let mut reps: Vec<usize> = Vec::new();
        let mut queue = VecDeque::from([0usize]);
        order[class[0] as usize] = Some(0);
        reps.push(0);
        while let Some(s) = queue.pop_front() {
            for sym in 0..k {
                let t = self.trans[s * k + sym] as usize;
                let c = class[t] as usize;
                if order[c].is_none() {
                    order[c] = Some(reps.len() as u32);
                    reps.push(t);
                    queue.push_back(t);
                }
            }
        }
        let mut trans = Vec::with_capacity(reps.len() * k);
        let mut accept = Vec::with_capacity(reps.len());
        for &s in &reps {
            accept.push(self.accept[s]);
            for sym in 0..k {
                let t = self.trans[s * k + sym] as usize;
                trans.push(order[class[t] as usize].unwrap_or(0));
            }
        }
        Dfa {
            symbols: k,
            trans,
            accept,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Glob text to symbols.
    pub(crate) fn glob(text: &str) -> Vec<Sym> {
        text.chars()
            .map(|c| match c {
                '*' => Sym::Star,
                '?' => Sym::One,
                c => Sym::Lit(c),
            })
            .collect()
    }

    fn lang(alpha: &Alphabet, patterns: &[&str]) -> Dfa {
        let p: Vec<Vec<Sym>> = patterns.iter().map(|p| glob(p)).collect();
        Dfa::from_patterns(alpha, &p).unwrap()
    }

    fn alphabet(patterns: &[&str]) -> Alphabet {
        let p: Vec<Vec<Sym>> = patterns.iter().map(|p| glob(p)).collect();
        Alphabet::new(p.iter().map(Vec::as_slice))
    }

    #[test]
    fn get_star_minus_get_object() {
        let a = alphabet(&["s3:get*", "s3:getobject"]);
        let get = lang(&a, &["s3:get*"]);
        let obj = lang(&a, &["s3:getobject"]);
        let rest = get.subtract(&obj).unwrap();
        assert!(!rest.is_empty());
        assert!(rest.accepts(&a, "s3:getbucketpolicy"));
        assert!(!rest.accepts(&a, "s3:getobject"));
        assert_eq!(rest.shortest(&a).as_deref(), Some("s3:get"));
        assert_eq!(rest.clone().trim().shortest(&a).as_deref(), Some("s3:get"));
        assert!(
            obj.subtract(&get).unwrap().is_empty(),
            "s3:GetObject is within s3:Get*"
        );
    }

    #[test]
    fn question_marks_take_one_character() {
        let a = alphabet(&["a?c", "abc", "a*"]);
        let q = lang(&a, &["a?c"]);
        assert!(q.accepts(&a, "abc"));
        assert!(q.accepts(&a, "a\u{e9}c"));
        assert!(!q.accepts(&a, "ac"));
        let rest = q.subtract(&lang(&a, &["abc"])).unwrap();
        assert!(!rest.accepts(&a, "abc"));
        assert!(rest.accepts(&a, "axc"));
        assert!(q.subtract(&lang(&a, &["a*"])).unwrap().is_empty());
    }

    #[test]
    fn star_except_stays_in_one_arn_part() {
        let p = vec![
            Sym::Lit('a'),
            Sym::StarExcept(':'),
            Sym::Lit(':'),
            Sym::Lit('b'),
        ];
        let a = Alphabet::new([p.as_slice()]);
        let d = Dfa::from_patterns(&a, &[p]).unwrap();
        assert!(d.accepts(&a, "axx:b"));
        assert!(d.accepts(&a, "a:b"));
        assert!(!d.accepts(&a, "a:x:b"));
    }

    #[test]
    fn exponential_patterns_are_refused() {
        let p = glob(&format!("*a{}", "?".repeat(20)));
        let a = Alphabet::new([p.as_slice()]);
        assert_eq!(Dfa::from_patterns(&a, &[p]), Err(TooComplex));
    }

    #[test]
    fn minimize_keeps_the_language() {
        let a = alphabet(&["*a*b*", "*b*"]);
        let x = lang(&a, &["*a*b*"]);
        let y = lang(&a, &["*b*"]);
        assert!(x.subtract(&y).unwrap().is_empty());
        assert!(!y.subtract(&x).unwrap().is_empty());
        assert_eq!(x.union(&y).unwrap().minimize(), y.clone().minimize());
        assert_eq!(x.intersect(&y).unwrap().minimize(), x.clone().minimize());
    }
}
