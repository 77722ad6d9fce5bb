//! Fuzzes the refusal of JSON bodies that give a key twice (`writ_audit::json::
//! no_duplicate_keys`), which the server runs on every body before anything reads it:
//! never a panic, no false alarm on JSON whose objects have unique keys (anything
//! serde_json writes), and no miss when a member of an object is given again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_audit::json::no_duplicate_keys;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let verdict = no_duplicate_keys(text);
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    // serde_json keeps one of each key: what it writes back has no duplicates.
    let written = serde_json::to_string(&value).unwrap();
    assert_eq!(
        no_duplicate_keys(&written),
        Ok(()),
        "false alarm on {written}"
    );
    if verdict.is_ok() {
        // Unique keys: the text and what serde_json read of it hold the same members.
        assert_eq!(count_members(text), count_members(&written), "{text}");
    }
    // The first member of a non-empty top-level object, given again, is found.
    if let serde_json::Value::Object(map) = &value
        && let Some((key, _)) = map.iter().next()
    {
        let again = format!(
            "{{{}:null,{}",
            serde_json::to_string(key).unwrap(),
            &written[1..]
        );
        let err = no_duplicate_keys(&again).expect_err(&again);
        assert_eq!((err.path.as_str(), err.key.as_str()), ("$", key.as_str()));
    }
});

/// The number of object members in a JSON text, counted by serde_json's own reading into
/// a list of pairs (which keeps every member, duplicates too).
fn count_members(text: &str) -> usize {
    fn walk(value: &Pairs) -> usize {
        match value {
            Pairs::Object(members) => {
                members.len() + members.iter().map(|(_, v)| walk(v)).sum::<usize>()
            }
            Pairs::Array(items) => items.iter().map(walk).sum(),
            Pairs::Scalar => 0,
        }
    }
    serde_json::from_str::<Pairs>(text).map_or(0, |v| walk(&v))
}

/// A JSON value with every object member kept, in order.
enum Pairs {
    Object(Vec<(String, Pairs)>),
    Array(Vec<Pairs>),
    Scalar,
}

impl<'de> serde::Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Pairs, E> {
                Ok(Pairs::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Pairs, E> {
                Ok(Pairs::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Pairs, E> {
                Ok(Pairs::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Pairs, E> {
                Ok(Pairs::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Pairs, E> {
                Ok(Pairs::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Pairs, E> {
                Ok(Pairs::Scalar)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Pairs, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Pairs::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Pairs, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Pairs>()? {
                    members.push((k, v));
                }
                Ok(Pairs::Object(members))
            }
        }
        d.deserialize_any(V)
    }
}
