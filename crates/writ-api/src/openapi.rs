//! The OpenAPI 3.1 document of the API, generated from [`crate::endpoints::all`] and the
//! types' schemas: what the server serves at `/v1/openapi.json`.
//!
//! Every route is an operation with its summary, tag, who may call it (its security
//! requirements: none for a public route), its path and query parameters, its request
//! body, its successful answer, and every error it may answer with, each in the error
//! shape ([`crate::error::ErrorBody`]).

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ComponentsBuilder, OneOfBuilder};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, RefOr, Required, ServerBuilder,
};

use crate::endpoint::{EndpointInfo, Schemas};
use crate::error::ErrorBody;

/// The security scheme of an admin token: `Authorization: Bearer writ.admin.<id>.<secret>`.
pub const ADMIN_TOKEN: &str = "adminToken";
/// The security scheme of a function's X.509-SVID, presented over mutual TLS.
pub const SVID: &str = "svid";
/// The security scheme of a JWT-SVID for the server, as a bearer token.
pub const JWT_SVID: &str = "jwtSvid";

/// The groups routes are listed under, in order, with what each holds.
const TAGS: [(&str, &str); 11] = [
    ("system", "The server itself"),
    (
        "identity",
        "Attestation, X.509-SVIDs, JWT-SVIDs and the trust bundle",
    ),
    (
        "revocation",
        "Revoking functions, SVIDs and tokens, and the feed that publishes it",
    ),
    ("functions", "The function registry"),
    (
        "gateways",
        "Gateways' own identities: registration, login and renewal of their TLS certificates",
    ),
    ("tokens", "Join tokens and admin tokens"),
    ("intentions", "Which function may call which"),
    ("ca", "The trust domain's signing keys"),
    ("audit", "The hash-chained audit log"),
    (
        "aws",
        "The AWS-compatible surfaces: signing keys of writ's AWS credentials, for gateways",
    ),
    (
        "quotas",
        "API-key quotas counted together by several gateways",
    ),
];

/// The secrets' group, listed last.
const SECRETS_TAG: (&str, &str) = ("secrets", "Secrets, in the shape of AWS Secrets Manager");

fn method(method: &http::Method) -> HttpMethod {
    match *method {
        http::Method::GET => HttpMethod::Get,
        http::Method::PUT => HttpMethod::Put,
        http::Method::DELETE => HttpMethod::Delete,
        http::Method::PATCH => HttpMethod::Patch,
        http::Method::HEAD => HttpMethod::Head,
        http::Method::OPTIONS => HttpMethod::Options,
        http::Method::TRACE => HttpMethod::Trace,
        _ => HttpMethod::Post,
    }
}

fn json_content(schema: RefOr<utoipa::openapi::schema::Schema>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

/// The operation of one route, its named schemas added to `schemas`.
fn operation(route: &EndpointInfo, schemas: &mut Schemas) -> utoipa::openapi::path::Operation {
    let error = crate::endpoint::document_as::<ErrorBody>(schemas);
    let answer = (route.answer_schema)(schemas);
    let mut op = OperationBuilder::new()
        .operation_id(Some(route.operation))
        .summary(Some(route.summary))
        .tag(route.tag)
        .description(Some(format!(
            "Callers: {}.",
            if route.callers == crate::Callers::Public {
                "anyone".to_string()
            } else {
                route.callers.describe().to_string()
            }
        )))
        .securities(Some(
            route
                .callers
                .security_schemes()
                .into_iter()
                .map(|s| SecurityRequirement::new(s, Vec::<String>::new())),
        ));
    let parameters = (route.parameters)();
    if !parameters.is_empty() {
        op = op.parameters(Some(parameters));
    }
    if let Some(body) = (route.request_schema)(schemas) {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", json_content(body))
                .build(),
        ));
    }
    let success = route.status.as_u16();
    let mut ok = ResponseBuilder::new().description(
        route
            .status
            .canonical_reason()
            .unwrap_or("Success")
            .to_string(),
    );
    if let Some(answer) = &answer {
        ok = ok.content("application/json", json_content(answer.clone()));
    }
    op = op.response(success.to_string(), ok.build());
    for (status, why) in route.errors() {
        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        // A status the route also answers successfully (a PUT's 201), or with its answer's
        // shape (a degraded health check), carries the answer's schema too.
        let success_too =
            route.route_errors.iter().any(|(s, _)| *s == status) && (200..300).contains(&status);
        let schema = match (&answer, &error) {
            (Some(answer), Some(error)) if status == 503 && route.path == "/v1/health" => {
                Some(RefOr::T(
                    OneOfBuilder::new()
                        .item(answer.clone())
                        .item(error.clone())
                        .into(),
                ))
            }
            (Some(answer), _) if success_too => Some(answer.clone()),
            (_, Some(error)) => Some(error.clone()),
            _ => None,
        };
        let mut response = ResponseBuilder::new().description(format!("{reason}: {why}"));
        if let Some(schema) = schema {
            response = response.content("application/json", json_content(schema));
        }
        if status == 429 {
            response = response.header(
                "Retry-After",
                utoipa::openapi::HeaderBuilder::new()
                    .schema(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::Integer)
                            .minimum(Some(1)),
                    )
                    .description(Some(
                        "Seconds until this address's attempts are heard again",
                    ))
                    .build(),
            );
        }
        op = op.response(status.to_string(), response.build());
    }
    if let Some(error) = error {
        op = op.response(
            "default",
            ResponseBuilder::new()
                .description(
                    "An error, in the error shape: 404 no such route, 405 method not allowed",
                )
                .content("application/json", json_content(error))
                .build(),
        );
    }
    op.build()
}

/// The document, as utoipa's model.
pub fn document() -> OpenApi {
    let mut schemas: Schemas = Vec::new();
    let mut paths = PathsBuilder::new();
    for route in crate::endpoints::all() {
        let op = operation(&route, &mut schemas);
        paths = paths.path(route.path, PathItem::new(method(&route.method), op));
    }
    let mut components = ComponentsBuilder::new();
    schemas.sort_by(|a, b| a.0.cmp(&b.0));
    schemas.dedup_by(|a, b| a.0 == b.0);
    for (name, schema) in schemas {
        components = components.schema(name, schema);
    }
    let mut http_bearer = Http::new(HttpAuthScheme::Bearer);
    http_bearer.description = Some(
        "An admin token, writ.admin.<id>.<secret>, authorized by its IAM-language policies".into(),
    );
    let mut jwt_bearer = Http::new(HttpAuthScheme::Bearer);
    jwt_bearer.bearer_format = Some("JWT".into());
    jwt_bearer.description =
        Some("A JWT-SVID whose only audience is spiffe://TRUST-DOMAIN/writ/server".into());
    let components = components
        .security_scheme(ADMIN_TOKEN, SecurityScheme::Http(http_bearer))
        .security_scheme(
            SVID,
            SecurityScheme::MutualTls {
                description: Some(
                    "The function's current X.509-SVID as the TLS client certificate".into(),
                ),
                extensions: None,
            },
        )
        .security_scheme(JWT_SVID, SecurityScheme::Http(jwt_bearer))
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("writ control plane")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Function identities, attestation, SVID issuance, rotation and revocation; \
                     intentions, secrets and the audit log. JSON over HTTPS; errors are \
                     {\"error\":{\"code\",\"message\"}}, and a 429 says in Retry-After when \
                     to try again. Generated from the writ-api crate.",
                ))
                .build(),
        )
        .servers(Some([ServerBuilder::new()
            .url("https://127.0.0.1:7443")
            .build()]))
        .security(Some([SecurityRequirement::new(
            ADMIN_TOKEN,
            Vec::<String>::new(),
        )]))
        .tags(Some(TAGS.iter().chain([&SECRETS_TAG]).map(
            |(name, about)| {
                TagBuilder::new()
                    .name(*name)
                    .description(Some(*about))
                    .build()
            },
        )))
        .paths(paths.build())
        .components(Some(components))
        .build()
}

/// The document as JSON, as the server serves it at `/v1/openapi.json`. (utoipa's model
/// has string keys only, so it always converts; `null` would mean it did not.)
pub fn openapi() -> serde_json::Value {
    serde_json::to_value(document()).unwrap_or(serde_json::Value::Null)
}
