//! SAM policy templates: a `Policies` entry such as `- DynamoDBCrudPolicy: {TableName: !Ref T}`
//! expanded into the policy document SAM deploys, from the templates of aws-sam-translator
//! (`data/sam-policy-templates.json`, vendored verbatim; Apache-2.0, see `data/README.md`).
//!
//! SAM substitutes the entry's parameters into the template's `Ref`s and `Fn::Sub`
//! variables; CloudFormation then fills in the pseudo parameters. Here a parameter given as
//! a literal (or a template parameter with a default) is its text; a reference to a
//! resource of the template (`!Ref Table`, `!GetAtt Queue.QueueName`) is that one resource,
//! written as its logical id; anything else (a parameter without default, a `!Sub` with
//! variables, a missing parameter) could be anything and is written `*`, so it can only
//! widen what is checked. `AWS::Partition` is `aws`, `AWS::URLSuffix` `amazonaws.com`,
//! every other pseudo parameter (region, account, stack) `*`.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::cfn::reposition;
use crate::json;
use crate::node::{Key, Kind, Node, Pos};

const TEMPLATES: &str = include_str!("../data/sam-policy-templates.json");

fn templates() -> Option<&'static Node> {
    static PARSED: OnceLock<Option<Node>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            json::parse(TEMPLATES)
                .ok()
                .flatten()
                .and_then(|d| d.get("Templates").cloned())
        })
        .as_ref()
}

/// The policy document a `Policies` entry `{Name: {Param: value}}` stands for, with every
/// position at the entry, and the template's name; `None` when the entry is no template.
/// `resources` are the template's logical ids.
pub(crate) fn expand(entry: &Node, resources: &HashSet<String>) -> Option<(String, Node)> {
    let [(key, args)] = entry.entries() else {
        return None;
    };
    let template = templates()?.get(&key.name)?;
    let definition = template.get("Definition")?;
    let given: Vec<(String, Option<&Node>)> = template
        .get("Parameters")
        .map(|p| {
            p.entries()
                .iter()
                .map(|(k, _)| (k.name.clone(), args.get(&k.name)))
                .collect()
        })
        .unwrap_or_default();
    let params: Vec<(String, String)> = given
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.map_or_else(|| "*".to_string(), |v| text(v, resources)),
            )
        })
        .collect();
    // A whole value that is a reference to a resource stays that reference (known at
    // deploy time, one resource), so validation does not take its logical id for an ARN.
    let refs: Vec<(String, Node)> = given
        .into_iter()
        .filter_map(|(k, v)| {
            let v = v?;
            matches!(&v.kind, Kind::Unresolved { target: Some(t), .. } if resources.contains(t))
                .then(|| (k, v.clone()))
        })
        .collect();
    let mut doc = substitute(definition, &params, &refs, entry.pos);
    // SAM deploys the statements without a Version; they use no policy variables, so the
    // 2008-10-17 default changes nothing, and a missing-version warning would ask the
    // template's author for an edit they cannot make.
    if let Kind::Map(entries) = &mut doc.kind
        && !entries.iter().any(|(k, _)| k.name == "Version")
    {
        entries.insert(
            0,
            (
                Key {
                    name: "Version".into(),
                    pos: entry.pos,
                },
                Node::str(entry.pos, "2012-10-17"),
            ),
        );
    }
    reposition(&mut doc, entry.pos);
    Some((key.name.clone(), doc))
}

/// A parameter value as text: a literal, a resource's logical id, or `*`.
fn text(v: &Node, resources: &HashSet<String>) -> String {
    match &v.kind {
        Kind::Str(s) | Kind::Num(s) => s.clone(),
        Kind::Bool(b) => b.to_string(),
        Kind::Unresolved {
            target: Some(t), ..
        } if resources.contains(t) => t.clone(),
        _ => "*".to_string(),
    }
}

fn pseudo(name: &str) -> Option<&'static str> {
    match name {
        "AWS::Partition" => Some("aws"),
        "AWS::URLSuffix" => Some("amazonaws.com"),
        n if n.starts_with("AWS::") => Some("*"),
        _ => None,
    }
}

fn lookup<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn substitute(n: &Node, params: &[(String, String)], refs: &[(String, Node)], pos: Pos) -> Node {
    match &n.kind {
        Kind::Map(entries) if entries.len() == 1 && entries[0].0.name == "Ref" => {
            let name = entries[0].1.as_str().unwrap_or("");
            if let Some((_, r)) = refs.iter().find(|(k, _)| k == name) {
                return r.clone();
            }
            let v = lookup(params, name).or_else(|| pseudo(name)).unwrap_or("*");
            Node::str(pos, v)
        }
        Kind::Map(entries) if entries.len() == 1 && entries[0].0.name == "Fn::Sub" => {
            let arg = &entries[0].1;
            let (s, vars) = match &arg.kind {
                Kind::Str(s) => (s.as_str(), Vec::new()),
                Kind::Seq(items) if !items.is_empty() => {
                    // `${var}` alone, the variable a reference to a resource: that reference.
                    if let (Some(whole), Some(map)) = (items[0].as_str(), items.get(1))
                        && let Some(var) =
                            whole.strip_prefix("${").and_then(|w| w.strip_suffix('}'))
                        && let Some(v) = map.get(var)
                    {
                        let v = substitute(v, params, refs, pos);
                        if v.is_unresolved() {
                            return v;
                        }
                    }
                    let vars = items.get(1).map_or_else(Vec::new, |m| {
                        m.entries()
                            .iter()
                            .map(|(k, v)| {
                                // Inside a string a reference is its text.
                                let v = substitute(v, params, &[], pos);
                                (k.name.clone(), v.as_str().unwrap_or("*").to_string())
                            })
                            .collect()
                    });
                    (items[0].as_str().unwrap_or("*"), vars)
                }
                _ => ("*", Vec::new()),
            };
            Node::str(pos, sub(s, &vars, params))
        }
        Kind::Map(entries) => Node::new(
            pos,
            Kind::Map(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), substitute(v, params, refs, pos)))
                    .collect(),
            ),
        ),
        Kind::Seq(items) => Node::new(
            pos,
            Kind::Seq(
                items
                    .iter()
                    .map(|i| substitute(i, params, refs, pos))
                    .collect(),
            ),
        ),
        _ => n.clone(),
    }
}

/// `Fn::Sub` of `s`: `${Var}` from the variable map, then the template's parameters, then
/// the pseudo parameters; `${!Literal}` is `${Literal}`; anything else `*`.
fn sub(s: &str, vars: &[(String, String)], params: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        if let Some(lit) = name.strip_prefix('!') {
            out.push_str("${");
            out.push_str(lit);
            out.push('}');
        } else {
            let v = lookup(vars, name)
                .or_else(|| lookup(params, name))
                .or_else(|| pseudo(name))
                .unwrap_or("*");
            out.push_str(v);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json_text: &str) -> Node {
        json::parse(json_text).unwrap().unwrap()
    }

    fn resources() -> HashSet<String> {
        ["Orders".to_string()].into_iter().collect()
    }

    #[test]
    fn every_vendored_template_expands_to_statements() {
        let all = templates().expect("templates parse");
        assert!(all.entries().len() > 70);
        for (k, _) in all.entries() {
            let e = entry(&format!("{{\"{}\": {{}}}}", k.name));
            let (_, doc) = expand(&e, &resources()).unwrap();
            assert!(doc.get("Statement").is_some(), "{}", k.name);
            assert!(!doc.contains_unresolved(), "{}", k.name);
            assert!(!doc.to_json().contains("Fn::"), "{}", k.name);
        }
    }

    #[test]
    fn parameters_are_substituted() {
        let e = entry(r#"{"DynamoDBCrudPolicy": {"TableName": "orders"}}"#);
        let (name, doc) = expand(&e, &resources()).unwrap();
        assert_eq!(name, "DynamoDBCrudPolicy");
        let json = doc.to_json();
        assert!(
            json.contains("arn:aws:dynamodb:*:*:table/orders\""),
            "{json}"
        );
        assert!(json.contains("table/orders/index/*"), "{json}");
        // A resource of the template is that resource; a missing parameter is anything.
        let r = Node::unresolved(Pos::new(1, 1), "Ref Orders", Some("Orders".into()));
        let mut e = entry(r#"{"DynamoDBCrudPolicy": {"TableName": "x"}}"#);
        if let Kind::Map(outer) = &mut e.kind
            && let Kind::Map(inner) = &mut outer[0].1.kind
        {
            inner[0].1 = r;
        }
        assert!(
            expand(&e, &resources())
                .unwrap()
                .1
                .to_json()
                .contains("table/Orders\"")
        );
        let e = entry(r#"{"DynamoDBCrudPolicy": {}}"#);
        assert!(
            expand(&e, &resources())
                .unwrap()
                .1
                .to_json()
                .contains("table/*\"")
        );
    }

    #[test]
    fn sub_fills_variables_and_keeps_literals() {
        let params = vec![("bucketName".to_string(), "b".to_string())];
        assert_eq!(
            sub(
                "arn:${AWS::Partition}:s3:::${bucketName}/${!x}",
                &[],
                &params
            ),
            "arn:aws:s3:::b/${x}"
        );
        assert_eq!(sub("${AWS::Region}:${nope}", &[], &[]), "*:*");
        assert_eq!(sub("a${b", &[], &[]), "a${b");
        assert!(expand(&entry(r#"{"NoSuchPolicy": {}}"#), &resources()).is_none());
    }
}
