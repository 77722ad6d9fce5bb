//! writ's own gateway configuration (`writ gateway --config FILE`, TOML): public routes and
//! weak settings. A TOML file is taken for one when it has `[[route]]` tables with an
//! `upstream` or a `lambda` (a route that invokes a Lambda function). The scan is by line, as the file's shape is fixed: top-level keys, then
//! tables; `writ gateway` itself refuses what is malformed.

use crate::node::Pos;
use crate::rules::{GW_METRICS, GW_PUBLIC, GW_STALENESS, Out};

/// Whether `text` looks like a writ gateway configuration.
pub fn is_gateway_config(text: &str) -> bool {
    text.lines().any(|l| l.trim() == "[[route]]")
        && text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("upstream") || l.starts_with("lambda") || l.starts_with("[route.lambda]")
        })
}

/// `key = value` on one line, outside strings' own `=`: the key and the raw value.
fn key_value(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || k.contains(' ') || k.starts_with('#') {
        return None;
    }
    Some((k, v.split(" #").next().unwrap_or(v).trim()))
}

fn unquote(v: &str) -> &str {
    v.trim_matches('"').trim_matches('\'')
}

/// Seconds in `90s`, `10m`, `1h`, `7d` (or a bare number of seconds).
fn seconds(v: &str) -> Option<u64> {
    let v = unquote(v);
    let at = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..at].parse().ok()?;
    let per = match &v[at..] {
        "" | "s" => 1,
        "ms" => return Some(n / 1000),
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(per)
}

/// Checks a gateway configuration.
pub fn check(text: &str, out: &mut Out) {
    // Where we are: top level (before any table), a route (with its name), or elsewhere.
    enum At {
        Top,
        Route(String),
        Other,
    }
    let mut at = At::Top;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        let indent = raw.chars().count() - line.chars().count();
        let pos = |col: usize| Pos::new((i + 1) as u32, (indent + col + 1) as u32);
        if line.starts_with('[') {
            at = if line.trim_end() == "[[route]]" {
                At::Route(String::new())
            } else if line.starts_with("[route.") {
                match at {
                    At::Route(name) => At::Route(name),
                    _ => At::Other,
                }
            } else {
                At::Other
            };
            continue;
        }
        let Some((key, value)) = key_value(line) else {
            continue;
        };
        match &mut at {
            At::Route(name) if key == "name" => *name = unquote(value).to_string(),
            At::Route(name) if key == "public" && value == "true" => {
                let route = if name.is_empty() {
                    "a route"
                } else {
                    name.as_str()
                };
                out.add(
                    GW_PUBLIC,
                    pos(0),
                    format!("route {route}"),
                    format!(
                        "route {route} is public: the gateway lets anyone through to its function, unauthenticated"
                    ),
                );
            }
            At::Top if key == "max_staleness" => {
                if let Some(s) = seconds(value)
                    && s > 3600
                {
                    out.add(
                        GW_STALENESS,
                        pos(0),
                        "max_staleness".into(),
                        format!(
                            "max_staleness is {s} s: while the server is unreachable, the gateway enforces state (and misses revocations) that old"
                        ),
                    );
                }
            }
            At::Top if key == "metrics_listen" => {
                let addr = unquote(value);
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let loopback = host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    out.add(
                        GW_METRICS,
                        pos(0),
                        "metrics_listen".into(),
                        format!(
                            "metrics_listen {addr} is not a loopback address: /metrics is plain HTTP without authentication"
                        ),
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_gateway_config;

    #[test]
    fn routes_with_an_upstream_or_a_lambda_function_make_a_gateway_config() {
        assert!(is_gateway_config(
            "[[route]]\nname = \"a\"\nupstream = \"http://h:1\"\n"
        ));
        assert!(is_gateway_config(
            "[[route]]\nname = \"a\"\nlambda = { function = \"f\" }\n"
        ));
        assert!(is_gateway_config(
            "[[route]]\nname = \"a\"\n[route.lambda]\nfunction = \"f\"\n"
        ));
        assert!(!is_gateway_config("[[route]]\nname = \"a\"\n"));
    }
}
