//! Console sessions: an opaque random id, held by the browser in an `HttpOnly`,
//! `SameSite=Strict`, `Secure` cookie, that stands for the admin token it was started with.
//! The server keeps the token in memory only, for at most [`SESSION_LIFETIME`]; every request
//! made with the cookie authenticates that token again, so a revoked or expired token ends
//! its sessions at once.
//!
//! A cookie is sent by the browser whoever asks it to, so a request authenticated by one must
//! prove it comes from the console's own pages ([`same_origin`]): the browser's
//! `Sec-Fetch-Site` and `Origin` say so, and a write carries [`CONSOLE_HEADER`], which a
//! cross-site form cannot send and a cross-site script cannot send without a CORS preflight
//! the server never answers.
//!
//! Nothing here does I/O: [`Sessions`] is a map in memory, and the checks are functions of
//! the request's headers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, header};

/// The cookie's name. `__Host-` makes the browser refuse it unless it is `Secure`, has
/// `Path=/` and no `Domain`, so no other host can set or shadow it.
pub const COOKIE: &str = "__Host-writ_session";

/// The header every console write carries, and that a cross-site form cannot.
pub const CONSOLE_HEADER: &str = "x-writ-console";

/// How long a session lasts from its start, whatever it is used for.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// The most sessions kept at once; starting one more ends the oldest.
pub const MAX_SESSIONS: usize = 4096;

/// The sessions this server started, by the SHA-256 of their id.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

/// One session: the admin token it stands for, and when it ends.
struct Session {
    token: String,
    started: Instant,
}

/// The key a session is kept under: the SHA-256 of its id, so the map holds nothing a
/// browser could present.
fn key(id: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

impl Sessions {
    /// Keeps a new session `id` for `token`, started `now`; ends expired sessions, and the
    /// oldest when [`MAX_SESSIONS`] are live.
    pub fn start(&self, id: &str, token: String, now: Instant) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, s| now.saturating_duration_since(s.started) < SESSION_LIFETIME);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live.iter().min_by_key(|(_, s)| s.started).map(|(k, _)| *k)
        {
            live.remove(&oldest);
        }
        live.insert(
            key(id),
            Session {
                token,
                started: now,
            },
        );
    }

    /// The token of session `id`, if it is live at `now`.
    pub fn token(&self, id: &str, now: Instant) -> Option<String> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let k = key(id);
        let session = live.get(&k)?;
        if now.saturating_duration_since(session.started) >= SESSION_LIFETIME {
            live.remove(&k);
            return None;
        }
        Some(session.token.clone())
    }

    /// Ends session `id`; whether it was live.
    pub fn end(&self, id: &str) -> bool {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.remove(&key(id)).is_some()
    }
}

/// A new session id: 32 random bytes, base64url.
pub fn new_id() -> Result<String, String> {
    use base64::Engine;
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system's random number generator failed".to_string())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The session id the request's `Cookie` headers carry, if any.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// The `Set-Cookie` value that gives the browser session `id`.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that makes the browser forget its session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

/// Whether a request may be authenticated by the console's cookie: it must come from the
/// console's own pages. `Err` says which header showed otherwise.
///
/// - `Sec-Fetch-Site`, when the browser sends it, is `same-origin`;
/// - `Origin`, when sent, is this server (`https://` and the request's `Host`);
/// - any method but `GET` and `HEAD` carries `X-Writ-Console: 1`.
pub fn same_origin(method: &Method, headers: &HeaderMap) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return Err("Sec-Fetch-Site: the request does not come from the console's own pages");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let ours = origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("https://"))
            .is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host));
        if !ours {
            return Err("Origin: the request comes from another site");
        }
    }
    if method != Method::GET
        && method != Method::HEAD
        && headers.get(CONSOLE_HEADER).map(|v| v.as_bytes()) != Some(b"1")
    {
        return Err(
            "X-Writ-Console: a change made with the console's cookie must carry \
                    X-Writ-Console: 1, which only the console's own pages send",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_the_consoles_own_pages_may_use_the_cookie() {
        let host = ("host", "127.0.0.1:8443");
        let ok = [
            (Method::GET, headers(&[host])),
            (
                Method::GET,
                headers(&[host, ("sec-fetch-site", "same-origin")]),
            ),
            (
                Method::POST,
                headers(&[
                    host,
                    ("sec-fetch-site", "same-origin"),
                    ("origin", "https://127.0.0.1:8443"),
                    ("x-writ-console", "1"),
                ]),
            ),
        ];
        for (method, h) in ok {
            assert_eq!(same_origin(&method, &h), Ok(()), "{method} {h:?}");
        }
        let refused = [
            // A cross-site form post: no custom header, the browser says cross-site.
            (
                Method::POST,
                headers(&[
                    host,
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "https://evil.example"),
                ]),
                "Sec-Fetch-Site",
            ),
            // An old browser that sends no Sec-Fetch-Site but an Origin of another site.
            (
                Method::GET,
                headers(&[host, ("origin", "https://evil.example")]),
                "Origin",
            ),
            (
                Method::GET,
                headers(&[host, ("sec-fetch-site", "same-site")]),
                "Sec-Fetch-Site",
            ),
            // Same origin, but a write without the console's header.
            (
                Method::POST,
                headers(&[host, ("sec-fetch-site", "same-origin")]),
                "X-Writ-Console",
            ),
            (
                Method::DELETE,
                headers(&[host, ("x-writ-console", "yes")]),
                "X-Writ-Console",
            ),
            // http:// is not this server.
            (
                Method::POST,
                headers(&[
                    host,
                    ("origin", "http://127.0.0.1:8443"),
                    ("x-writ-console", "1"),
                ]),
                "Origin",
            ),
        ];
        for (method, h, named) in refused {
            let err = same_origin(&method, &h).unwrap_err();
            assert!(err.starts_with(named), "{method} {h:?}: {err}");
        }
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; __Host-writ_session=abc ; b=2")]);
        assert_eq!(cookie(&h), Some("abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "__Host-writ_session=xyz")]);
        assert_eq!(cookie(&h), Some("xyz"));
        assert_eq!(cookie(&headers(&[("cookie", "writ_session=abc")])), None);
        assert!(set_cookie("abc").contains("HttpOnly; Secure; SameSite=Strict; Path=/"));
    }

    #[test]
    fn a_session_lasts_its_lifetime_and_ends_when_ended() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        sessions.start("one", "writ.admin.a.b".into(), t0);
        assert_eq!(sessions.token("one", t0).as_deref(), Some("writ.admin.a.b"));
        assert_eq!(sessions.token("two", t0), None);
        assert_eq!(sessions.token("one", t0 + SESSION_LIFETIME), None);
        sessions.start("three", "writ.admin.c.d".into(), t0);
        assert!(sessions.end("three"));
        assert_eq!(sessions.token("three", t0), None);
        assert!(!sessions.end("three"));
    }

    #[test]
    fn starting_more_than_the_most_ends_the_oldest() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        for i in 0..=MAX_SESSIONS {
            sessions.start(
                &format!("s{i}"),
                "t".into(),
                t0 + Duration::from_millis(i as u64),
            );
        }
        let now = t0 + Duration::from_secs(10);
        assert_eq!(sessions.token("s0", now), None);
        assert!(sessions.token("s1", now).is_some());
        assert!(sessions.token(&format!("s{MAX_SESSIONS}"), now).is_some());
    }
}
