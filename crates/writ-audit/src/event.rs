//! One audit event: who did what to which resource, what was decided and why.

use serde::{Deserialize, Serialize};

/// What the policy engine decided, named as AWS names it: the engine's own
/// [`writ_policy::Outcome`], so a decision keeps its kind from the engine to the log.
pub use writ_policy::Outcome as Decision;

/// How the request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// It was allowed and done.
    Allowed,
    /// It was refused: authentication failed or policy denied it.
    Denied,
    /// It was allowed but failed (bad input, or an internal error).
    Failed,
}

impl Outcome {
    /// The name in an event's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// One audit event. Field order is the order of its JSON, which the hash chain commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    /// When, RFC 3339 in UTC.
    pub time: String,
    /// The server, gateway or agent that recorded it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// The request it belongs to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// Who: a SPIFFE ID, `token:<hmac>`, or `anonymous`.
    pub actor: String,
    /// How the actor authenticated: `adminToken`, `joinToken`, `oidc`, `awsIam`, `x509Svid`,
    /// `jwtSvid`, `hmac`, `apiKey` or `none`.
    pub authenticated_by: String,
    /// The action, e.g. `writ:RegisterFunction`, `writ:Invoke`, `secrets:GetSecretValue`.
    pub action: String,
    /// What it acted on.
    pub resource: String,
    /// The policy decision, for authorization events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The statements that decided it (`policy Sid "X"` or `policy Statement[i]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The certificate serial issued, for issuance events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Where the request came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How long the request took until the event, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// For events sent in by a gateway or agent: the identity that sent them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<String>,
}

impl Event {
    /// An event with the required fields; the rest empty.
    pub fn new(
        time: &str,
        actor: &str,
        authenticated_by: &str,
        action: &str,
        resource: &str,
        outcome: Outcome,
    ) -> Event {
        Event {
            time: time.into(),
            node: String::new(),
            request_id: String::new(),
            actor: actor.into(),
            authenticated_by: authenticated_by.into(),
            action: action.into(),
            resource: resource.into(),
            decision: None,
            matched: Vec::new(),
            outcome,
            reason: None,
            serial: None,
            source: None,
            latency_us: None,
            reported_by: None,
        }
    }

    /// The event's JSON, as the chain commits to it: what serde_json writes for it (field
    /// order and names, empty fields skipped), written directly, as this runs for every
    /// event stored.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(384);
        self.write_json(&mut out);
        out
    }

    /// Appends [`Event::to_json`]'s text to `out`.
    pub fn write_json(&self, out: &mut String) {
        use crate::json::{number, string};
        out.push_str("{\"time\":");
        string(out, &self.time);
        if !self.node.is_empty() {
            out.push_str(",\"node\":");
            string(out, &self.node);
        }
        if !self.request_id.is_empty() {
            out.push_str(",\"requestId\":");
            string(out, &self.request_id);
        }
        out.push_str(",\"actor\":");
        string(out, &self.actor);
        out.push_str(",\"authenticatedBy\":");
        string(out, &self.authenticated_by);
        out.push_str(",\"action\":");
        string(out, &self.action);
        out.push_str(",\"resource\":");
        string(out, &self.resource);
        if let Some(d) = self.decision {
            out.push_str(",\"decision\":");
            string(out, d.as_str());
        }
        if !self.matched.is_empty() {
            out.push_str(",\"matched\":[");
            for (i, m) in self.matched.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(out, m);
            }
            out.push(']');
        }
        out.push_str(",\"outcome\":");
        string(out, self.outcome.as_str());
        for (name, value) in [
            (",\"reason\":", &self.reason),
            (",\"serial\":", &self.serial),
            (",\"source\":", &self.source),
        ] {
            if let Some(v) = value {
                out.push_str(name);
                string(out, v);
            }
        }
        if let Some(us) = self.latency_us {
            out.push_str(",\"latencyUs\":");
            number(out, us);
        }
        if let Some(by) = &self.reported_by {
            out.push_str(",\"reportedBy\":");
            string(out, by);
        }
        out.push('}');
    }

    /// Every text field, for redaction.
    pub(crate) fn texts_mut(&mut self) -> impl Iterator<Item = &mut String> {
        [
            &mut self.node,
            &mut self.request_id,
            &mut self.actor,
            &mut self.authenticated_by,
            &mut self.action,
            &mut self.resource,
        ]
        .into_iter()
        .chain(self.matched.iter_mut())
        .chain(self.reason.iter_mut())
        .chain(self.serial.iter_mut())
        .chain(self.source.iter_mut())
        .chain(self.reported_by.iter_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        "\\PC{0,12}|[\\x00-\\x20\"\\\\\\x7f]{0,4}"
    }

    fn event() -> impl Strategy<Value = Event> {
        (
            (text(), text(), text(), text(), text(), text(), text()),
            (
                prop::option::of(prop_oneof![
                    Just(Decision::Allowed),
                    Just(Decision::ExplicitDeny),
                    Just(Decision::ImplicitDeny)
                ]),
                prop::collection::vec(text(), 0..3),
                prop_oneof![
                    Just(Outcome::Allowed),
                    Just(Outcome::Denied),
                    Just(Outcome::Failed)
                ],
                prop::option::of(text()),
                prop::option::of(text()),
                prop::option::of(text()),
                prop::option::of(any::<u64>()),
                prop::option::of(text()),
            ),
        )
            .prop_map(
                |(
                    (time, node, request_id, actor, authenticated_by, action, resource),
                    (decision, matched, outcome, reason, serial, source, latency_us, reported_by),
                )| Event {
                    time,
                    node,
                    request_id,
                    actor,
                    authenticated_by,
                    action,
                    resource,
                    decision,
                    matched,
                    outcome,
                    reason,
                    serial,
                    source,
                    latency_us,
                    reported_by,
                },
            )
    }

    proptest! {
        /// The chain hashes `to_json`, and events stored before it was written by hand
        /// were serde_json's: the two must agree byte for byte.
        #[test]
        fn to_json_is_serde_jsons(e in event()) {
            prop_assert_eq!(e.to_json(), serde_json::to_string(&e).unwrap());
        }
    }

    #[test]
    fn names_are_those_of_the_json() {
        for d in [
            Decision::Allowed,
            Decision::ExplicitDeny,
            Decision::ImplicitDeny,
        ] {
            assert_eq!(
                serde_json::to_string(&d).unwrap(),
                format!("\"{}\"", d.as_str())
            );
        }
        for o in [Outcome::Allowed, Outcome::Denied, Outcome::Failed] {
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.as_str())
            );
        }
    }
}
