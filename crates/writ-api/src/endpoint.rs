//! What a route is, as a type: [`Endpoint`] says where a route is, who may call it, what
//! it takes and what it answers, and how a request fills the path, the query string and
//! the body. Clients send with it; the server can mount and check its routes by it; the
//! OpenAPI document is generated from it ([`EndpointInfo`]).

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::Parameter;
use utoipa::openapi::schema::Schema;

/// Named schemas collected for the OpenAPI document's `components`.
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// The kinds of credential a route accepts. Before any handler runs, the server refuses
/// (401) a request that presents none of them; the handler then verifies the credential
/// and decides the action on its resource (403 when policy does not allow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Callers {
    /// Anyone: the route gives out only public data (health, the OpenAPI document, the
    /// trust bundle), or authenticates by what the request carries (a login's evidence).
    Public,
    /// Operators, by an admin token (`Authorization: Bearer writ.admin.…`).
    Operators,
    /// Functions, by their X.509-SVID over mutual TLS.
    Functions,
    /// Gateways, by the X.509-SVID writ issued them (`spiffe://TD/writ/gateway/NAME`)
    /// over mutual TLS.
    Gateways,
    /// Operators by admin token, or functions (agents, gateways) by X.509-SVID.
    OperatorsOrFunctions,
    /// Operators by admin token, or functions by X.509-SVID or by a JWT-SVID whose
    /// audience is the server (`spiffe://TRUST-DOMAIN/writ/server`).
    OperatorsOrFunctionsOrJwt,
}

impl Callers {
    /// Whether an admin token is accepted.
    pub fn admin_token(self) -> bool {
        !matches!(
            self,
            Callers::Public | Callers::Functions | Callers::Gateways
        )
    }

    /// Whether an X.509-SVID over mutual TLS (a function's, or for [`Callers::Gateways`] a
    /// gateway's) is accepted.
    pub fn svid(self) -> bool {
        !matches!(self, Callers::Public | Callers::Operators)
    }

    /// Whether a JWT-SVID for the server is accepted as a bearer token.
    pub fn jwt_svid(self) -> bool {
        self == Callers::OperatorsOrFunctionsOrJwt
    }

    /// The names of the OpenAPI security schemes that may authenticate a call: none for a
    /// public route.
    pub fn security_schemes(self) -> Vec<&'static str> {
        let mut schemes = Vec::new();
        if self.admin_token() {
            schemes.push(crate::openapi::ADMIN_TOKEN);
        }
        if self.svid() {
            schemes.push(crate::openapi::SVID);
        }
        if self.jwt_svid() {
            schemes.push(crate::openapi::JWT_SVID);
        }
        schemes
    }

    /// What such a route takes, for people: `an admin token or a function's X.509-SVID`.
    pub fn describe(self) -> &'static str {
        match self {
            Callers::Public => "anyone",
            Callers::Operators => "an admin token (Authorization: Bearer)",
            Callers::Functions => "a function's X.509-SVID (mutual TLS)",
            Callers::Gateways => "a gateway's X.509-SVID (mutual TLS)",
            Callers::OperatorsOrFunctions => "an admin token or a function's X.509-SVID",
            Callers::OperatorsOrFunctionsOrJwt => {
                "an admin token, a function's X.509-SVID, or a JWT-SVID for the server"
            }
        }
    }
}

/// A JSON document a route takes or answers with, as the OpenAPI document describes it.
/// The bodies and answers of [`crate::endpoints`] are, by their schema ([`ToSchema`], or
/// the one in [`crate::schemas`] for a type of writ's core crates); [`NoBody`] and
/// [`NoContent`] have none.
pub trait Documented {
    /// A reference to the schema (its named schemas added to `schemas`), or `None` when
    /// there is no document.
    fn document(schemas: &mut Schemas) -> Option<RefOr<Schema>>;
}

/// [`Documented::document`] for a type whose schema is `T`'s.
pub fn document_as<T: ToSchema>(schemas: &mut Schemas) -> Option<RefOr<Schema>> {
    let name = T::name();
    T::schemas(schemas);
    schemas.push((name.to_string(), T::schema()));
    Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name)))
}

/// Makes each type [`Documented`] by its own schema.
macro_rules! documented {
    ($($t:ty),* $(,)?) => {
        $(
            impl $crate::endpoint::Documented for $t {
                fn document(
                    schemas: &mut $crate::endpoint::Schemas,
                ) -> Option<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>> {
                    $crate::endpoint::document_as::<$t>(schemas)
                }
            }
        )*
    };
}
pub(crate) use documented;

/// The request of a route that takes nothing: no path parameter, no query, no body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoRequest;

/// The body of a route that takes none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoBody;

impl Documented for NoBody {
    fn document(_: &mut Schemas) -> Option<RefOr<Schema>> {
        None
    }
}

/// The answer of a route that answers `204 No Content`. It is `null` in JSON, so a client
/// decodes an empty answer as `null`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoContent;

impl Documented for NoContent {
    fn document(_: &mut Schemas) -> Option<RefOr<Schema>> {
        None
    }
}

/// One route of the API. Each route is a zero-sized type in [`crate::endpoints`]; a client
/// sends an [`Endpoint::Request`] and gets an [`Endpoint::Answer`] back.
pub trait Endpoint {
    /// The method.
    const METHOD: http::Method;
    /// The path, with `{name}` for parameters, as axum and OpenAPI write it.
    const PATH: &'static str;
    /// Who may call it.
    const CALLERS: Callers;
    /// The status of a successful answer.
    const STATUS: http::StatusCode;
    /// A unique name for the operation (`registerFunction`).
    const OPERATION: &'static str;
    /// One line on what it does.
    const SUMMARY: &'static str;
    /// The group it is listed under in the OpenAPI document.
    const TAG: &'static str;
    /// The errors particular to this route (beyond those of its callers' kind and its body,
    /// which [`EndpointInfo::errors`] adds), with when each happens.
    const ERRORS: &'static [(u16, &'static str)] = &[];

    /// What the caller gives: the path parameters, the query and the body together.
    type Request;
    /// The JSON body sent, or [`NoBody`].
    type Body: Serialize + Documented;
    /// The JSON answer, or [`NoContent`].
    type Answer: Serialize + DeserializeOwned + Documented;

    /// The path with its parameters filled in from `request`, percent-encoded.
    fn path(request: &Self::Request) -> Cow<'static, str> {
        let _ = request;
        Cow::Borrowed(Self::PATH)
    }

    /// The query string (without `?`) `request` fills in, if any.
    fn query(request: &Self::Request) -> Option<String> {
        let _ = request;
        None
    }

    /// The body `request` sends, if any.
    fn body(request: &Self::Request) -> Option<&Self::Body>;

    /// The path and query parameters, for the OpenAPI document.
    fn parameters() -> Vec<Parameter> {
        Vec::new()
    }
}

/// One route, as listed by [`crate::endpoints::all`]: what the OpenAPI document and the
/// server's route table need to know of it, without its types.
#[derive(Clone)]
pub struct EndpointInfo {
    /// The method.
    pub method: http::Method,
    /// The path, with `{name}` for parameters.
    pub path: &'static str,
    /// Who may call it.
    pub callers: Callers,
    /// The status of a successful answer.
    pub status: http::StatusCode,
    /// A unique name for the operation.
    pub operation: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// The group it is listed under.
    pub tag: &'static str,
    /// Whether it takes a JSON body.
    pub takes_body: bool,
    /// The errors particular to this route.
    pub route_errors: &'static [(u16, &'static str)],
    /// The request body's schema (its named schemas added to the argument).
    pub request_schema: fn(&mut Schemas) -> Option<RefOr<Schema>>,
    /// The answer's schema (its named schemas added to the argument).
    pub answer_schema: fn(&mut Schemas) -> Option<RefOr<Schema>>,
    /// The path and query parameters.
    pub parameters: fn() -> Vec<Parameter>,
}

impl std::fmt::Debug for EndpointInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointInfo")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("callers", &self.callers)
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

impl EndpointInfo {
    /// What `E` says of itself.
    pub fn of<E: Endpoint>() -> EndpointInfo {
        EndpointInfo {
            method: E::METHOD,
            path: E::PATH,
            callers: E::CALLERS,
            status: E::STATUS,
            operation: E::OPERATION,
            summary: E::SUMMARY,
            tag: E::TAG,
            takes_body: <E::Body as Documented>::document(&mut Vec::new()).is_some(),
            route_errors: E::ERRORS,
            request_schema: <E::Body as Documented>::document,
            answer_schema: <E::Answer as Documented>::document,
            parameters: E::parameters,
        }
    }

    /// Every error status the route may answer with, and when: those of its callers' kind
    /// (401, 403, 429), of its body (400, 413, 415), and its own; in status order.
    pub fn errors(&self) -> Vec<(u16, Cow<'static, str>)> {
        let mut errors: Vec<(u16, Cow<'static, str>)> = Vec::new();
        let mut add = |status: u16, why: Cow<'static, str>| match errors
            .iter_mut()
            .find(|(s, _)| *s == status)
        {
            Some((_, text)) => *text = Cow::Owned(format!("{text}; {why}")),
            None => errors.push((status, why)),
        };
        if self.takes_body {
            add(
                400,
                "the body is not valid for this route: the message names the field".into(),
            );
            add(413, "the body is larger than this route takes".into());
            add(415, "the body was not sent as application/json".into());
        } else if !(self.parameters)().is_empty() {
            add(400, "a parameter is not valid: the message names it".into());
        }
        if self.callers != Callers::Public {
            add(
                401,
                format!(
                    "authentication failed (the same answer for every cause); this route takes {}",
                    self.callers.describe()
                )
                .into(),
            );
            add(
                429,
                "too many failed authentications from this address: wait the seconds in Retry-After"
                    .into(),
            );
        }
        if self.callers.admin_token() {
            add(
                403,
                "the admin token's policies do not allow the action on the resource".into(),
            );
        }
        for (status, why) in self.route_errors {
            add(*status, Cow::Borrowed(why));
        }
        add(500, "the server failed; its log has the details".into());
        errors.sort_by_key(|(s, _)| *s);
        errors
    }
}

/// Percent-encodes `text` for a URL's path segment or query value: everything but
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query string of a request whose fields are its parameters: each field that is not
/// `null`, in the order of their names, as `name=value` with the value
/// percent-encoded. A field that is an object or an array cannot be a parameter, and is an
/// error.
pub fn query_string(request: &impl Serialize) -> Result<String, serde_json::Error> {
    use serde::ser::Error as _;
    let value = serde_json::to_value(request)?;
    let serde_json::Value::Object(fields) = value else {
        return Err(serde_json::Error::custom(
            "a query is an object whose fields are its parameters",
        ));
    };
    let mut pairs = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        let text = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return Err(serde_json::Error::custom(format!(
                    "query parameter {name}: not a string, number or boolean"
                )));
            }
        };
        pairs.push(format!(
            "{}={}",
            percent_encode(&name),
            percent_encode(&text)
        ));
    }
    Ok(pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_skip_nulls_and_encode_values() {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Q {
            after: i64,
            actor: Option<String>,
            since_ms: Option<i64>,
            wait: u64,
        }
        let q = Q {
            after: 3,
            actor: Some("spiffe://example.org/fn/a b".into()),
            since_ms: None,
            wait: 0,
        };
        // serde_json sorts an object's keys.
        assert_eq!(
            query_string(&q).unwrap(),
            "actor=spiffe%3A%2F%2Fexample.org%2Ffn%2Fa%20b&after=3&wait=0"
        );
        assert!(query_string(&vec![1]).is_err());
    }

    #[test]
    fn callers_map_to_security_schemes() {
        assert!(Callers::Public.security_schemes().is_empty());
        assert_eq!(Callers::Operators.security_schemes(), ["adminToken"]);
        assert_eq!(Callers::Functions.security_schemes(), ["svid"]);
        assert_eq!(Callers::Gateways.security_schemes(), ["svid"]);
        assert_eq!(
            Callers::OperatorsOrFunctionsOrJwt.security_schemes(),
            ["adminToken", "svid", "jwtSvid"]
        );
    }
}
