//! The difference between the server's state and the declared one: a pure function from
//! (current, desired, prune) to an ordered list of changes, and what stands in the way of
//! making them.

use serde::Serialize;
use serde_json::Value;
use writ_policy::intentions::Intention;

use super::model::{FunctionSpec, RotationSpec, State};

/// One change that makes the server's state the declared one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "camelCase")]
pub enum Change {
    /// Register a function.
    #[serde(rename_all = "camelCase")]
    CreateFunction {
        /// Its name.
        name: String,
        /// What it is declared as.
        spec: FunctionSpec,
    },
    /// Update a function's rules, SVID lifetime or policies.
    #[serde(rename_all = "camelCase")]
    UpdateFunction {
        /// Its name.
        name: String,
        /// Which of `attestation`, `x509Ttl` and `policies` differ.
        fields: Vec<&'static str>,
        /// What it is declared as.
        spec: FunctionSpec,
    },
    /// Delete a function no file declares (with `--prune`).
    #[serde(rename_all = "camelCase")]
    DeleteFunction {
        /// Its name.
        name: String,
    },
    /// Write an intention (new, or different from the server's).
    #[serde(rename_all = "camelCase")]
    PutIntention {
        /// The intention.
        intention: Intention,
        /// Whether the server has one for the pair already.
        replaces: bool,
    },
    /// Delete an intention no file declares (with `--prune`).
    #[serde(rename_all = "camelCase")]
    DeleteIntention {
        /// Its source.
        source: String,
        /// Its destination.
        destination: String,
    },
    /// Set (or remove, when `None`) a secret's resource policy.
    #[serde(rename_all = "camelCase")]
    SetSecretPolicy {
        /// The secret.
        name: String,
        /// The policy.
        policy: Option<Value>,
    },
    /// Set a secret's rotation hook and schedule (without rotating it now).
    #[serde(rename_all = "camelCase")]
    SetSecretRotation {
        /// The secret.
        name: String,
        /// The rotation.
        rotation: RotationSpec,
    },
    /// Schedule the deletion of a secret no file declares (with `--prune`); it stays
    /// restorable for the server's recovery window.
    #[serde(rename_all = "camelCase")]
    DeleteSecret {
        /// The secret.
        name: String,
    },
}

impl Change {
    /// One line for people: `+ function orders`, `~ function orders (policies)`.
    pub fn line(&self) -> String {
        match self {
            Change::CreateFunction { name, .. } => format!("+ function {name}"),
            Change::UpdateFunction { name, fields, .. } => {
                format!("~ function {name} ({})", fields.join(", "))
            }
            Change::DeleteFunction { name } => {
                format!("- function {name} (its SVIDs are revoked with it)")
            }
            Change::PutIntention {
                intention,
                replaces,
            } => format!(
                "{} intention {} ({})",
                if *replaces { "~" } else { "+" },
                intention.label(),
                intention.action
            ),
            Change::DeleteIntention {
                source,
                destination,
            } => format!("- intention {source} -> {destination}"),
            Change::SetSecretPolicy { name, policy } => match policy {
                Some(_) => format!("~ secret {name} (resource policy)"),
                None => format!("~ secret {name} (resource policy removed)"),
            },
            Change::SetSecretRotation { name, .. } => format!("~ secret {name} (rotation)"),
            Change::DeleteSecret { name } => {
                format!("- secret {name} (scheduled for deletion, restorable)")
            }
        }
    }
}

/// What the plan holds: the changes, in the order they are made, and what blocks or is
/// left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The changes, in order: functions created and updated, intentions written, secret
    /// policies set; then intentions, secrets and functions removed.
    pub changes: Vec<Change>,
    /// Declared secrets the server does not have. writ never holds a secret's value, and
    /// a secret cannot be created without one: apply refuses until each is created
    /// (`writ secret put NAME --value-file FILE`).
    pub missing_secrets: Vec<String>,
    /// Differences apply leaves as they are, for people (a secret's description, which
    /// writ cannot change; a revoked function, which apply does not reinstate).
    pub notes: Vec<String>,
}

impl Plan {
    /// Whether applying would change nothing and nothing blocks it.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.missing_secrets.is_empty()
    }
}

/// The plan that makes `current` into `desired`. Without `prune`, what the server has and
/// no file declares is left alone.
pub fn plan(current: &State, desired: &State, prune: bool) -> Plan {
    let mut out = Plan::default();
    for (name, want) in &desired.functions {
        match current.functions.get(name) {
            None => out.changes.push(Change::CreateFunction {
                name: name.clone(),
                spec: want.clone(),
            }),
            Some(have) => {
                let mut fields = Vec::new();
                if have.attestation != want.attestation {
                    fields.push("attestation");
                }
                if have.x509_ttl != want.x509_ttl {
                    fields.push("x509Ttl");
                }
                if have.policies != want.policies {
                    fields.push("policies");
                }
                if !fields.is_empty() {
                    out.changes.push(Change::UpdateFunction {
                        name: name.clone(),
                        fields,
                        spec: want.clone(),
                    });
                }
                if current.revoked.contains(name) {
                    out.notes.push(format!(
                        "function {name} is revoked; apply leaves it so (writ fn reinstate {name})"
                    ));
                }
            }
        }
    }
    for (pair, want) in &desired.intentions {
        let have = current.intentions.get(pair);
        if have != Some(want) {
            out.changes.push(Change::PutIntention {
                intention: want.clone(),
                replaces: have.is_some(),
            });
        }
    }
    for (name, want) in &desired.secrets {
        match current.secrets.get(name) {
            None => out.missing_secrets.push(name.clone()),
            Some(have) => {
                if have.resource_policy != want.resource_policy {
                    out.changes.push(Change::SetSecretPolicy {
                        name: name.clone(),
                        policy: want.resource_policy.clone(),
                    });
                }
                match (&want.rotation, &have.rotation) {
                    (Some(w), h) if h.as_ref() != Some(w) => {
                        out.changes.push(Change::SetSecretRotation {
                            name: name.clone(),
                            rotation: w.clone(),
                        })
                    }
                    (None, Some(_)) => out.notes.push(format!(
                        "secret {name}: the server rotates it and no file declares a rotation; \
                         writ cannot remove a rotation hook, so apply leaves it"
                    )),
                    _ => {}
                }
                if have.description != want.description {
                    out.notes.push(format!(
                        "secret {name}: its description differs ({:?} on the server); writ \
                         cannot change a secret's description, so apply leaves it",
                        have.description
                    ));
                }
            }
        }
    }
    if prune {
        for (source, destination) in current.intentions.keys() {
            if !desired
                .intentions
                .contains_key(&(source.clone(), destination.clone()))
            {
                out.changes.push(Change::DeleteIntention {
                    source: source.clone(),
                    destination: destination.clone(),
                });
            }
        }
        for name in current.secrets.keys() {
            if !desired.secrets.contains_key(name) {
                out.changes
                    .push(Change::DeleteSecret { name: name.clone() });
            }
        }
        for name in current.functions.keys() {
            if !desired.functions.contains_key(name) {
                out.changes
                    .push(Change::DeleteFunction { name: name.clone() });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use writ_api::functions::default_rules;
    use writ_policy::intentions::IntentionAction;

    use super::super::model::SecretSpec;
    use super::*;

    fn function(ttl: Option<&str>) -> FunctionSpec {
        FunctionSpec {
            attestation: default_rules(),
            x509_ttl: ttl.map(str::to_string),
            policies: Vec::new(),
        }
    }

    fn state() -> State {
        let mut s = State::default();
        s.functions.insert("orders".into(), function(None));
        s.functions.insert("payments".into(), function(Some("30m")));
        s.intentions.insert(
            ("orders".into(), "payments".into()),
            Intention::new("orders", "payments", IntentionAction::Allow),
        );
        s.secrets.insert(
            "db".into(),
            SecretSpec {
                description: "orders database".into(),
                resource_policy: None,
                rotation: None,
            },
        );
        s
    }

    #[test]
    fn the_same_state_needs_no_change() {
        let p = plan(&state(), &state(), true);
        assert!(p.is_empty(), "{p:?}");
        assert!(p.notes.is_empty());
    }

    #[test]
    fn one_difference_is_one_change() {
        let mut desired = state();
        desired.functions.get_mut("orders").unwrap().policies =
            vec![json!({"Version": "2012-10-17", "Statement": []})];
        let p = plan(&state(), &desired, false);
        assert_eq!(
            p.changes,
            [Change::UpdateFunction {
                name: "orders".into(),
                fields: vec!["policies"],
                spec: desired.functions["orders"].clone(),
            }]
        );
        assert_eq!(p.changes[0].line(), "~ function orders (policies)");
    }

    #[test]
    fn creations_come_first_and_removals_only_with_prune() {
        let current = state();
        let mut desired = State::default();
        desired.functions.insert("billing".into(), function(None));
        desired.intentions.insert(
            ("billing".into(), "orders".into()),
            Intention::new("billing", "orders", IntentionAction::Deny),
        );
        let kept = plan(&current, &desired, false);
        assert_eq!(
            kept.changes.iter().map(Change::line).collect::<Vec<_>>(),
            ["+ function billing", "+ intention billing -> orders (deny)"]
        );
        let pruned = plan(&current, &desired, true);
        assert_eq!(
            pruned.changes.iter().map(Change::line).collect::<Vec<_>>(),
            [
                "+ function billing",
                "+ intention billing -> orders (deny)",
                "- intention orders -> payments",
                "- secret db (scheduled for deletion, restorable)",
                "- function orders (its SVIDs are revoked with it)",
                "- function payments (its SVIDs are revoked with it)",
            ]
        );
    }

    #[test]
    fn a_changed_intention_replaces_and_ttl_back_to_default_is_a_change() {
        let mut desired = state();
        desired
            .intentions
            .get_mut(&("orders".into(), "payments".into()))
            .unwrap()
            .action = IntentionAction::Deny;
        desired.functions.insert("payments".into(), function(None));
        let p = plan(&state(), &desired, false);
        assert_eq!(
            p.changes.iter().map(Change::line).collect::<Vec<_>>(),
            [
                "~ function payments (x509Ttl)",
                "~ intention orders -> payments (deny)"
            ]
        );
    }

    #[test]
    fn secrets_absent_block_and_descriptions_are_notes() {
        let mut desired = state();
        desired.secrets.insert(
            "api-key".into(),
            SecretSpec {
                description: String::new(),
                resource_policy: None,
                rotation: None,
            },
        );
        let policy = json!({"Version": "2012-10-17", "Statement": []});
        *desired.secrets.get_mut("db").unwrap() = SecretSpec {
            description: "another".into(),
            resource_policy: Some(policy.clone()),
            rotation: None,
        };
        let p = plan(&state(), &desired, false);
        assert_eq!(p.missing_secrets, ["api-key"]);
        assert_eq!(
            p.changes,
            [Change::SetSecretPolicy {
                name: "db".into(),
                policy: Some(policy)
            }]
        );
        assert_eq!(p.notes.len(), 1);
        assert!(!p.is_empty());
    }

    #[test]
    fn a_declared_rotation_is_set_and_an_undeclared_one_is_left() {
        let rotation = RotationSpec {
            hook: writ_api::secrets::Hook::Command { name: "db".into() },
            every: Some("30d".into()),
        };
        let mut desired = state();
        desired.secrets.get_mut("db").unwrap().rotation = Some(rotation.clone());
        let p = plan(&state(), &desired, false);
        assert_eq!(
            p.changes,
            [Change::SetSecretRotation {
                name: "db".into(),
                rotation: rotation.clone()
            }]
        );
        assert!(plan(&desired, &desired, true).is_empty());
        let p = plan(&desired, &state(), false);
        assert!(p.changes.is_empty(), "{p:?}");
        assert_eq!(p.notes.len(), 1, "{p:?}");
    }

    #[test]
    fn fingerprints_follow_the_state() {
        let a = state();
        let mut b = state();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.revoked.push("orders".into());
        assert_ne!(a.fingerprint(), b.fingerprint());
        let mut c = state();
        c.secrets = BTreeMap::new();
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
