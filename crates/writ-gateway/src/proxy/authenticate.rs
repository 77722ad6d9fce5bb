//! Authentication, the request path's second step: which of the route's methods the
//! request carries credentials for, and whether they hold (an X.509-SVID on the
//! connection, a JWT-SVID, a webhook signature, an API key with its plan's limits). The
//! checks that need no state are [`crate::authn`]'s; this module keeps the caches and
//! the per-key limits around them.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use writ_identity::{AudienceRule, SpiffeId};

use super::headers::names;
use super::refusal::Refusal;
use super::{Connection, Gateway, Live, now_unix};
use crate::authn::{self, VerifiedSvid};
use crate::config::{AuthMethod, WebhookStyle};
use crate::limits::{Bucket, Quota};
use crate::metrics::Label;

/// Per API key: its hash, and its plan's limits.
pub(super) struct KeyState {
    /// Its plan, as configured: a reload keeps the state of a key whose plan is the same.
    pub(super) plan: crate::config::UsagePlan,
    pub(super) hash: String,
    pub(super) routes: Vec<String>,
    pub(super) bucket: Option<Bucket>,
    /// The plan's quota, counted by this gateway alone.
    pub(super) quota: Option<Quota>,
    /// The plan's quota, counted through the server with the other gateways.
    pub(super) shared: Option<Arc<super::shared_quota::SharedKey>>,
}

/// A client certificate checked against one bundle (by its digest), or why it was refused.
pub(super) type CheckedCert = (u64, Result<Arc<CheckedSvid>, String>);

/// A client certificate that verified as an X.509-SVID, with what each request on its
/// connection needs from it worked out once.
pub(super) struct CheckedSvid {
    pub(super) svid: VerifiedSvid,
    /// Its not-before and not-after, Unix seconds.
    pub(super) not_before: i64,
    pub(super) not_after: i64,
    /// Its serial as revocations are compared ([`crate::control::serial_key`]).
    pub(super) serial_key: String,
    /// Its SPIFFE ID, as audited.
    pub(super) actor: Arc<str>,
    /// Its SPIFFE ID, as forwarded in `x-writ-caller`.
    pub(super) header: Option<HeaderValue>,
}

/// A verified JWT-SVID: its subject, `iat`, `exp`, the digest of the JWKS it was verified
/// against, and the serial of the X.509-SVID it was minted with, if it names one.
pub(super) type JwtHit = (SpiffeId, i64, i64, u64, Option<Arc<str>>);

/// Who the caller proved to be, and how (`mtls`, `jwt`, `webhook`, `api-key`, `public`).
pub(super) struct Caller {
    /// A SPIFFE ID, `apikey:ID`, `webhook:ROUTE` or `anonymous`.
    pub(super) actor: Arc<str>,
    /// The verified X.509-SVID, for an mTLS caller.
    pub(super) svid: Option<Arc<CheckedSvid>>,
    /// Whether `actor` is a verified SPIFFE ID, which intentions then authorize.
    pub(super) workload: bool,
    pub(super) method: &'static str,
}

impl Gateway {
    pub(super) async fn authenticate(
        &self,
        live: &Live,
        parts: &Parts,
        body: Option<&Bytes>,
        conn: &Connection,
        control: &crate::control::Control,
    ) -> Result<Caller, Refusal> {
        let route = &live.route;
        let headers = &parts.headers;
        if route.public {
            return Ok(Caller {
                actor: "anonymous".into(),
                svid: None,
                workload: false,
                method: "public",
            });
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        for method in &route.auth {
            match method {
                AuthMethod::Mtls => {
                    if conn.peer_cert.is_some() {
                        return self.check_svid(conn, control).map(|svid| Caller {
                            actor: svid.actor.clone(),
                            svid: Some(svid),
                            workload: true,
                            method: AuthMethod::Mtls.as_str(),
                        });
                    }
                }
                AuthMethod::Jwt => {
                    if let Some(token) = bearer {
                        return self
                            .check_jwt(token, &live.audience, live.audience_rule, control)
                            .map(|id| Caller {
                                actor: id.as_str().into(),
                                svid: None,
                                workload: true,
                                method: AuthMethod::Jwt.as_str(),
                            });
                    }
                }
                AuthMethod::ApiKey => {
                    if let Some(key) = headers.get(names::X_API_KEY).and_then(|v| v.to_str().ok()) {
                        return self.check_api_key(key, &route.name).await.map(|id| Caller {
                            actor: format!("apikey:{id}").into(),
                            svid: None,
                            workload: false,
                            method: AuthMethod::ApiKey.as_str(),
                        });
                    }
                }
                AuthMethod::AwsIam => {
                    if let Some(rule) = &live.aws_iam
                        && super::aws_iam::is_signed(parts)
                    {
                        return self
                            .check_aws_iam(rule, parts, body, control)
                            .await
                            .map(|id| Caller {
                                actor: id.as_str().into(),
                                svid: None,
                                workload: true,
                                method: AuthMethod::AwsIam.as_str(),
                            });
                    }
                }
                AuthMethod::Webhook => {
                    if let Some(w) = &route.webhook {
                        let (name, present) = match w.style {
                            WebhookStyle::Github => (
                                "x-hub-signature-256",
                                headers.get(names::X_HUB_SIGNATURE_256),
                            ),
                            WebhookStyle::Stripe => {
                                ("stripe-signature", headers.get(names::STRIPE_SIGNATURE))
                            }
                        };
                        if present.is_some() {
                            let key = self.secrets.get(&w.secret).await.map_err(|e| {
                                Refusal::new(
                                    StatusCode::SERVICE_UNAVAILABLE,
                                    "unavailable",
                                    Label::Unavailable,
                                    "the webhook key is unavailable",
                                )
                                .with_reason(format!("webhook key {}: {e}", w.secret))
                            })?;
                            let header_value = present.and_then(|v| v.to_str().ok());
                            let body = body.map_or(&[][..], |b| &b[..]);
                            let checked = match w.style {
                                WebhookStyle::Github => {
                                    authn::github_signature_ok(key.as_bytes(), body, header_value)
                                }
                                WebhookStyle::Stripe => authn::stripe_signature_ok(
                                    key.as_bytes(),
                                    body,
                                    header_value,
                                    now_unix(),
                                    w.tolerance,
                                ),
                            };
                            return checked
                                .map(|()| Caller {
                                    actor: format!("webhook:{}", route.name).into(),
                                    svid: None,
                                    workload: false,
                                    method: AuthMethod::Webhook.as_str(),
                                })
                                .map_err(|e| Refusal::unauthenticated(format!("{name}: {e}")));
                        }
                    }
                }
            }
        }
        let offered: Vec<&str> = route.auth.iter().map(|m| m.as_str()).collect();
        Err(Refusal::unauthenticated(format!(
            "no credentials for this route, which takes {}",
            offered.join(", ")
        )))
    }

    fn check_svid(
        &self,
        conn: &Connection,
        control: &crate::control::Control,
    ) -> Result<Arc<CheckedSvid>, Refusal> {
        let bundle_id = control.bundle_digest;
        let Some(cert) = &conn.peer_cert else {
            return Err(Refusal::unauthenticated("no client certificate"));
        };
        let compute = || {
            let now = time::OffsetDateTime::now_utc();
            authn::verify_svid(cert, &control.bundle, self.trust_domain.as_str(), now).and_then(
                |svid| {
                    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
                        .map_err(|_| "unreadable certificate".to_string())?;
                    let v = parsed.validity();
                    Ok(Arc::new(CheckedSvid {
                        not_before: v.not_before.timestamp(),
                        not_after: v.not_after.timestamp(),
                        serial_key: crate::control::serial_key(&svid.serial),
                        actor: svid.id.as_str().into(),
                        header: HeaderValue::from_str(svid.id.as_str()).ok(),
                        svid,
                    }))
                },
            )
        };
        let verified = conn.verified.get_or_init(|| (bundle_id, compute()));
        let recomputed;
        let verified = if verified.0 == bundle_id {
            &verified.1
        } else {
            // The bundle changed since this connection was checked: check again.
            recomputed = compute();
            &recomputed
        };
        let checked = verified.clone().map_err(Refusal::unauthenticated)?;
        if now_unix() >= checked.not_after {
            return Err(Refusal::unauthenticated(
                "the client certificate has expired",
            ));
        }
        if control.revoked_serials.contains(&checked.serial_key) {
            return Err(Refusal::unauthenticated(format!(
                "SVID {} is revoked",
                checked.svid.serial
            )));
        }
        if let Some(at) = control.revoked_functions.get(checked.svid.id.as_str())
            && checked.not_before + 30 < *at
        {
            return Err(Refusal::unauthenticated(format!(
                "{} is revoked",
                checked.svid.id
            )));
        }
        Ok(checked)
    }

    fn check_jwt(
        &self,
        token: &str,
        audience: &str,
        rule: AudienceRule,
        control: &crate::control::Control,
    ) -> Result<SpiffeId, Refusal> {
        // The audience and the rule it was checked by are part of the key: a token
        // verified for one route's function is not thereby good for another's, nor a
        // multi-audience token accepted by a route that allows it good for one that does
        // not. (The JWKS it was verified against is checked with the hit.)
        let key = {
            let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
            digest.update(match rule {
                AudienceRule::Exactly => b"exactly\0",
                AudienceRule::AllowMultiple => b"several\0",
            });
            digest.update(audience.as_bytes());
            digest.update(b"\0");
            digest.update(token.as_bytes());
            let mut key = [0u8; 32];
            key.copy_from_slice(digest.finish().as_ref());
            key
        };
        let now = now_unix();
        let cached = self
            .jwt_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        let (id, iat, exp, _, serial) = match cached.filter(|hit| hit.3 == control.jwks_digest) {
            Some(hit) => hit,
            None => {
                let (id, claims) = writ_identity::jwt_svid::verify_with(
                    token,
                    &control.jwks,
                    &self.trust_domain,
                    audience,
                    rule,
                    time::OffsetDateTime::now_utc(),
                    time::Duration::seconds(30),
                )
                .map_err(|e| Refusal::unauthenticated(format!("JWT-SVID refused: {e}")))?;
                if !id.path().starts_with("/fn/") {
                    return Err(Refusal::unauthenticated(format!("{id} is not a function")));
                }
                let serial = claims
                    .x509_svid_serial
                    .as_deref()
                    .map(|s| Arc::from(crate::control::serial_key(s)));
                let entry = (id, claims.iat, claims.exp, control.jwks_digest, serial);
                let mut cache = self
                    .jwt_cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if cache.len() >= 100_000 {
                    cache.retain(|_, hit| hit.2 > now);
                    if cache.len() >= 100_000 {
                        cache.clear();
                    }
                }
                cache.insert(key, entry.clone());
                entry
            }
        };
        if now > exp + 30 {
            return Err(Refusal::unauthenticated("JWT-SVID refused: expired"));
        }
        if let Some(at) = control.revoked_functions.get(id.as_str())
            && iat < *at
        {
            return Err(Refusal::unauthenticated(format!("{id} is revoked")));
        }
        // A token minted with an X.509-SVID falls with it.
        if serial
            .as_ref()
            .is_some_and(|s| control.revoked_serials.contains(s.as_ref()))
        {
            return Err(Refusal::unauthenticated(
                "JWT-SVID refused: the X.509-SVID it was minted with is revoked",
            ));
        }
        Ok(id)
    }

    async fn check_api_key(&self, presented: &str, route: &str) -> Result<String, Refusal> {
        let Some((id, secret)) = authn::parse_api_key(presented) else {
            return Err(Refusal::unauthenticated("x-api-key: not a writ API key"));
        };
        let shared = self.check_api_key_locally(id, secret, route)?;
        if let Some(shared) = shared {
            shared.spend(&self.server).await?;
        }
        Ok(id.to_string())
    }

    /// The checks of an API key that need no wait: its secret, its routes, its rate and
    /// its plan's quota (a shared quota's admission spent if one is held). The shared
    /// quota is returned when a request must wait for a lease from the server.
    fn check_api_key_locally(
        &self,
        id: &str,
        secret: &str,
        route: &str,
    ) -> Result<Option<Arc<super::shared_quota::SharedKey>>, Refusal> {
        let table = self.table();
        let mut keys = table
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(state) = keys.get_mut(id) else {
            return Err(Refusal::unauthenticated(format!(
                "x-api-key: no key {id:?}"
            )));
        };
        if !authn::api_key_matches(secret, &state.hash) {
            return Err(Refusal::unauthenticated(format!(
                "x-api-key: wrong secret for key {id:?}"
            )));
        }
        if !state.routes.iter().any(|r| r == route) {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "accessDenied",
                Label::Denied,
                format!("API key {id} may not call route {route}"),
            ));
        }
        let now = Instant::now();
        if let Some(b) = &mut state.bucket
            && let Err(wait) = b.take(now)
        {
            let mut r = Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rateLimited",
                Label::RateLimited,
                format!("API key {id} is over its rate"),
            );
            r.retry_after = Some(wait);
            return Err(r);
        }
        if let Some(q) = &mut state.quota
            && let Err(wait) = q.take(now)
        {
            let mut r = Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "quotaExceeded",
                Label::QuotaExceeded,
                format!("API key {id} has used its quota"),
            );
            r.retry_after = Some(wait);
            return Err(r);
        }
        match &state.shared {
            Some(shared) if !shared.try_spend(&self.server)? => Ok(Some(shared.clone())),
            _ => Ok(None),
        }
    }
}
