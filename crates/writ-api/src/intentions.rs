//! Intentions: which function may call which. Operators write them; gateways follow them;
//! `check` answers "may S call D?" with the same compiled policy the gateway enforces.
//! An intention is [`writ_policy::intentions::Intention`], as the policy engine reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use writ_policy::intentions::Intention;

use crate::schemas::IntentionSchema;

/// `GET /v1/intentions`: with `after`, a long poll that answers once the intentions'
/// index passes `after`, or after `wait` seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IntentionsQuery {
    /// Wait for the index to pass this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// How long to wait, in seconds (0 to 60).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wait: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An intention as stored: the intention and when it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentionEntry {
    /// The intention.
    #[serde(flatten)]
    pub intention: Intention,
    /// When it was first written, RFC 3339.
    pub created_at: String,
    /// When it was last written, RFC 3339.
    pub updated_at: String,
}

impl PartialSchema for IntentionEntry {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        let times = ObjectBuilder::new()
            .property(
                "createdAt",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::DateTime,
                    )))
                    .description(Some("When it was first written")),
            )
            .property(
                "updatedAt",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::DateTime,
                    )))
                    .description(Some("When it was last written")),
            )
            .required("createdAt")
            .required("updatedAt");
        AllOfBuilder::new()
            .item(Ref::from_schema_name(IntentionSchema::name()))
            .item(times)
            .description(Some("An intention as stored, with when it was written"))
            .into()
    }
}

impl ToSchema for IntentionEntry {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("IntentionEntry")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<utoipa::openapi::schema::Schema>)>) {
        schemas.push((IntentionSchema::name().into(), IntentionSchema::schema()));
        <IntentionSchema as ToSchema>::schemas(schemas);
    }
}

/// Every intention, with the index they are at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IntentionList {
    /// The intentions.
    pub intentions: Vec<IntentionEntry>,
    /// Bumped by every change.
    pub index: i64,
}

/// `PUT /v1/intentions`: what was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IntentionWritten {
    /// The intention, as written.
    #[schema(value_type = IntentionSchema)]
    pub intention: Intention,
    /// The index after the change.
    pub index: i64,
    /// Whether it is new (201) rather than replacing one (200).
    pub created: bool,
}

/// `DELETE /v1/intentions?source=S&destination=D`: which intention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IntentionPair {
    /// The calling function, or `*`.
    #[param(pattern = r"^(\*|[A-Za-z0-9._-]{1,128})$")]
    pub source: String,
    /// The called function, or `*`.
    #[param(pattern = r"^(\*|[A-Za-z0-9._-]{1,128})$")]
    pub destination: String,
}

/// What a delete removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IntentionDeleted {
    /// The intention.
    #[schema(value_type = IntentionSchema)]
    pub deleted: Intention,
    /// The index after the change.
    pub index: i64,
}

/// `POST /v1/intentions/check`: may `source` call `destination` with this method, path
/// and headers?
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckRequest {
    /// The calling function's name.
    pub source: String,
    /// The called function's name.
    pub destination: String,
    /// The request's method (upper case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The request's path (starting with `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The request's headers, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// An intention not saved yet, checked in place of the stored one for its source and
    /// destination (or beside the stored ones, when there is none): what a call would meet
    /// if it were saved. Nothing is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<IntentionSchema>)]
    pub proposed: Option<Intention>,
}

/// Whether a call would be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum IntentionDecision {
    /// It would be forwarded.
    Allowed,
    /// It would be refused (403).
    Denied,
}

/// A check's answer: the decision and the intention that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IntentionVerdict {
    /// The decision.
    pub decision: IntentionDecision,
    /// The intention that decided; `null` for the default deny.
    #[schema(value_type = Option<IntentionSchema>)]
    pub intention: Option<Intention>,
    /// Why, for people: `allowed by intention orders -> payments (POST /charge)`.
    pub reason: String,
    /// The Sids of the compiled statements that decided.
    pub matched: Vec<String>,
    /// The intentions' index the decision was made at.
    pub index: i64,
}

impl IntentionVerdict {
    /// Whether the call would be allowed.
    pub fn allowed(&self) -> bool {
        self.decision == IntentionDecision::Allowed
    }
}
