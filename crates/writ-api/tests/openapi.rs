//! The generated OpenAPI document: valid, self-contained, and describing every route of
//! [`writ_api::all`] once, as the server mounts them.

use std::collections::BTreeSet;

use serde_json::Value;

/// The routes the server mounts (crates/writ-server/src/api/routes.rs), method and path.
const MOUNTED: [(&str, &str); 43] = [
    ("GET", "/v1/health"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/bundle"),
    ("GET", "/v1/bundle/jwks"),
    ("POST", "/v1/login"),
    ("POST", "/v1/svid/x509"),
    ("POST", "/v1/svid/jwt"),
    ("GET", "/v1/revocations"),
    ("POST", "/v1/revocations"),
    ("GET", "/v1/functions"),
    ("POST", "/v1/functions"),
    ("GET", "/v1/functions/{name}"),
    ("DELETE", "/v1/functions/{name}"),
    ("PUT", "/v1/functions/{name}"),
    ("POST", "/v1/functions/{name}/reinstate"),
    ("POST", "/v1/functions/{name}/join-tokens"),
    ("POST", "/v1/gateways"),
    ("GET", "/v1/gateways"),
    ("POST", "/v1/gateways/{name}/join-tokens"),
    ("POST", "/v1/gateway/login"),
    ("POST", "/v1/gateway/svid"),
    ("GET", "/v1/intentions"),
    ("PUT", "/v1/intentions"),
    ("DELETE", "/v1/intentions"),
    ("POST", "/v1/intentions/check"),
    ("POST", "/v1/tokens"),
    ("GET", "/v1/ca"),
    ("POST", "/v1/ca/rotate"),
    ("GET", "/v1/audit/events"),
    ("POST", "/v1/audit/events"),
    ("GET", "/v1/audit/checkpoints"),
    ("POST", "/v1/aws/signing-key"),
    ("POST", "/v1/aws/credentials"),
    ("POST", "/v1/quotas/lease"),
    ("POST", "/v1/secrets/create"),
    ("POST", "/v1/secrets/put"),
    ("POST", "/v1/secrets/get"),
    ("POST", "/v1/secrets/describe"),
    ("POST", "/v1/secrets/list"),
    ("POST", "/v1/secrets/delete"),
    ("POST", "/v1/secrets/restore"),
    ("POST", "/v1/secrets/policy"),
    ("POST", "/v1/secrets/rotate"),
];

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().expect("$ref is a string"));
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_json() {
    let doc = writ_api::openapi();
    let text = serde_json::to_string_pretty(&doc).unwrap();
    let again: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(again, doc);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "writ control plane");
    assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
}

#[test]
fn every_reference_resolves() {
    let doc = writ_api::openapi();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 50, "{}", found.len());
    for r in found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}: not a schema reference"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref {r}"
        );
    }
}

#[test]
fn every_route_appears_once_with_its_method_and_no_other() {
    let doc = writ_api::openapi();
    let routes = writ_api::all();
    let listed: BTreeSet<(String, String)> = routes
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(listed.len(), routes.len(), "a route is listed twice");
    let operations: BTreeSet<&str> = routes.iter().map(|r| r.operation).collect();
    assert_eq!(
        operations.len(),
        routes.len(),
        "an operation id is used twice"
    );
    let mounted: BTreeSet<(String, String)> = MOUNTED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        listed, mounted,
        "writ_api::all() and the server's routes differ"
    );
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("responses").is_some() {
                documented.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    assert_eq!(documented, listed);
    for r in &routes {
        let op = &doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()];
        assert_eq!(op["operationId"], r.operation);
        assert_eq!(op["summary"], r.summary);
        assert_eq!(op["tags"][0], r.tag);
        assert!(
            op["responses"].get(r.status.as_str()).is_some(),
            "{} {}: no {} answer",
            r.method,
            r.path,
            r.status
        );
    }
}

#[test]
fn each_route_says_who_may_call_it_and_how_it_fails() {
    let doc = writ_api::openapi();
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["adminToken"]["type"], "http");
    assert_eq!(schemes["adminToken"]["scheme"], "bearer");
    assert_eq!(schemes["svid"]["type"], "mutualTLS");
    assert_eq!(schemes["jwtSvid"]["bearerFormat"], "JWT");
    for r in writ_api::all() {
        let op = &doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()];
        let security = op["security"].as_array().expect("every operation says");
        let named: Vec<&str> = security
            .iter()
            .flat_map(|s| s.as_object().unwrap().keys().map(String::as_str))
            .collect();
        assert_eq!(named, r.callers.security_schemes(), "{}", r.path);
        for name in &named {
            assert!(schemes.contains_key(*name), "{name}");
        }
        let responses = op["responses"].as_object().unwrap();
        let mut wanted = vec!["500", "default"];
        if r.callers != writ_api::Callers::Public
            || matches!(r.path, "/v1/login" | "/v1/gateway/login")
        {
            wanted.extend(["401", "429"]);
            let retry = &responses["429"]["headers"]["Retry-After"];
            assert_eq!(retry["schema"]["type"], "integer", "{}", r.path);
        }
        if r.takes_body {
            wanted.extend(["400", "413", "415"]);
            assert_eq!(op["requestBody"]["required"], true);
        }
        for status in wanted {
            let answer = responses
                .get(status)
                .unwrap_or_else(|| panic!("{} {}: no {status}", r.method, r.path));
            if status != "default" && status.starts_with(['4', '5']) && status != "503" {
                assert_eq!(
                    answer["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{} {} {status}",
                    r.method,
                    r.path
                );
            }
        }
    }
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error"]));
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    assert_eq!(detail["required"], serde_json::json!(["code", "message"]));
}

#[test]
fn parameters_are_documented_where_the_path_or_query_has_them() {
    let doc = writ_api::openapi();
    let names = |method: &str, path: &str| -> Vec<String> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        format!(
                            "{}:{}",
                            p["in"].as_str().unwrap(),
                            p["name"].as_str().unwrap()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(names("get", "/v1/functions/{name}"), ["path:name"]);
    assert_eq!(
        names("post", "/v1/functions/{name}/join-tokens"),
        ["path:name"]
    );
    assert_eq!(
        names("get", "/v1/revocations"),
        ["query:after", "query:wait"]
    );
    assert_eq!(
        names("delete", "/v1/intentions"),
        ["query:source", "query:destination"]
    );
    assert_eq!(
        names("get", "/v1/audit/events"),
        [
            "query:after",
            "query:limit",
            "query:actor",
            "query:sinceMs",
            "query:outcome",
            "query:wait"
        ]
    );
}
