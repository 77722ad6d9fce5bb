//! Who may make the agent act as its function: the checks every local listener (the
//! localhost API and each outbound listener) makes before anything else.
//!
//! A listener on loopback is reachable from more than the function beside it. A web page
//! in a browser on the same machine can send it requests (cross-site request forgery), and
//! a page whose domain name is re-pointed to 127.0.0.1 can even read the answers (DNS
//! rebinding). Neither is the function. So a request is served only when
//!
//! - its `Host` (and the authority of an absolute request target, if it has one) is this
//!   listener's own address: the loopback IP it is bound to, or `localhost`, with its port
//!   (a rebinding page's `Host` names the attacker's domain); otherwise 421 Misdirected
//!   Request;
//! - it carries none of the headers only browsers send: `Origin`, or any `Sec-Fetch-*`
//!   (`Sec-Fetch-Site`, `Sec-Fetch-Mode`, `Sec-Fetch-Dest`, `Sec-Fetch-User`), which a
//!   page's scripts cannot remove; otherwise 403.
//!
//! [`OwnAddress::check`] decides from the request's headers alone, without I/O.

use std::net::{IpAddr, SocketAddr};

use hyper::header::{HOST, HeaderMap, ORIGIN};
use hyper::{StatusCode, Uri};

/// Why a request was refused: the status to answer with and what to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 421 for a request addressed elsewhere, 403 for a browser's.
    pub status: StatusCode,
    /// What was wrong and where, without echoing the request's values.
    pub message: String,
}

/// The address one local listener answers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnAddress {
    bound: SocketAddr,
}

/// The headers whose presence marks a request as a browser's (besides `Origin`): the
/// name to look up, and the name to give in a refusal.
const BROWSER_HEADERS: [(&str, &str); 4] = [
    ("sec-fetch-site", "Sec-Fetch-Site"),
    ("sec-fetch-mode", "Sec-Fetch-Mode"),
    ("sec-fetch-dest", "Sec-Fetch-Dest"),
    ("sec-fetch-user", "Sec-Fetch-User"),
];

impl OwnAddress {
    /// The listener bound to `bound` (its real port, after binding port 0).
    pub fn new(bound: SocketAddr) -> OwnAddress {
        OwnAddress { bound }
    }

    /// The `Host` values this listener accepts, for messages: `IP:PORT` and
    /// `localhost:PORT`.
    pub fn hosts(&self) -> String {
        format!("{} or localhost:{}", self.bound, self.bound.port())
    }

    /// Whether `authority` (`HOST[:PORT]`, as in a `Host` header) names this listener:
    /// its IP literal or `localhost` (any case), and its port (80 when none is given).
    fn is_own(&self, authority: &str) -> bool {
        let (host, port) = match split_authority(authority) {
            Some(parts) => parts,
            None => return false,
        };
        let port_ok = match port {
            Some(p) => p.parse::<u16>().is_ok_and(|p| p == self.bound.port()),
            None => self.bound.port() == 80,
        };
        let host_ok = host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip == self.bound.ip());
        port_ok && host_ok
    }

    /// Decides whether a request with `headers` and target `uri` may be served by this
    /// listener: `Ok` if it is addressed to this listener and is not a browser's.
    pub fn check(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), Refusal> {
        let misdirected = |what: &str| Refusal {
            status: StatusCode::MISDIRECTED_REQUEST,
            message: format!(
                "{what}: the agent's listeners answer only requests addressed to them; send Host: {} (a guard against DNS rebinding)",
                self.hosts()
            ),
        };
        let mut hosts = headers.get_all(HOST).iter();
        let host = match (hosts.next(), hosts.next()) {
            (Some(h), None) => h,
            (None, _) => return Err(misdirected("Host header: missing")),
            (Some(_), Some(_)) => return Err(misdirected("Host header: given more than once")),
        };
        let host_is_own = host.to_str().is_ok_and(|h| self.is_own(h));
        if !host_is_own {
            return Err(misdirected("Host header: not this listener's address"));
        }
        if let Some(authority) = uri.authority()
            && !self.is_own(authority.as_str())
        {
            return Err(misdirected(
                "request target: its authority is not this listener's address",
            ));
        }
        let browser = if headers.contains_key(ORIGIN) {
            Some("Origin")
        } else {
            BROWSER_HEADERS
                .iter()
                .find(|(name, _)| headers.contains_key(*name))
                .map(|(_, shown)| *shown)
        };
        if let Some(header) = browser {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "{header} header: sent by a browser; the agent acts as its function only for the function's own code, never for a web page"
                ),
            });
        }
        Ok(())
    }
}

/// `HOST[:PORT]` or `[IPV6][:PORT]` split into host (without brackets) and port; `None`
/// when it is malformed (an unclosed bracket, text after one, brackets around anything
/// but an IPv6 literal, user info).
fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        if !host.contains(':') {
            return None;
        }
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match authority.split_once(':') {
        Some((host, port)) if !port.contains(':') => Some((host, Some(port))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn own() -> OwnAddress {
        OwnAddress::new("127.0.0.1:2773".parse().unwrap())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    fn check(pairs: &[(&'static str, &'static str)]) -> Result<(), Refusal> {
        own().check(&headers(pairs), &Uri::from_static("/v1/svid"))
    }

    fn status(pairs: &[(&'static str, &'static str)]) -> Option<u16> {
        check(pairs).err().map(|r| r.status.as_u16())
    }

    #[test]
    fn the_listeners_own_address_is_accepted() {
        assert_eq!(check(&[("host", "127.0.0.1:2773")]), Ok(()));
        assert_eq!(check(&[("host", "localhost:2773")]), Ok(()));
        assert_eq!(check(&[("host", "LocalHost:2773")]), Ok(()));
        assert_eq!(
            check(&[
                ("host", "localhost:2773"),
                ("user-agent", "aws-sdk"),
                ("x-aws-parameters-secrets-token", "t")
            ]),
            Ok(())
        );
        let v6 = OwnAddress::new("[::1]:9101".parse().unwrap());
        let uri = Uri::from_static("/pay");
        assert_eq!(v6.check(&headers(&[("host", "[::1]:9101")]), &uri), Ok(()));
        assert_eq!(
            v6.check(&headers(&[("host", "localhost:9101")]), &uri),
            Ok(())
        );
        let on_80 = OwnAddress::new("127.0.0.1:80".parse().unwrap());
        assert_eq!(
            on_80.check(&headers(&[("host", "localhost")]), &uri),
            Ok(())
        );
    }

    #[test]
    fn a_host_that_is_not_the_listener_is_misdirected() {
        for host in [
            "evil.example",
            "evil.example:2773",
            "127.0.0.1",
            "127.0.0.1:2774",
            "127.0.0.2:2773",
            "localhost.evil.example:2773",
            "localhost:2773.evil.example",
            "user@localhost:2773",
            "[::1]:2773",
            "[127.0.0.1]:2773",
            "localhost:",
            "localhost:99999",
            "",
        ] {
            let mut h = HeaderMap::new();
            h.insert(HOST, HeaderValue::from_str(host).unwrap());
            let refused = own().check(&h, &Uri::from_static("/"));
            assert_eq!(
                refused.as_ref().map_err(|r| r.status),
                Err(StatusCode::MISDIRECTED_REQUEST),
                "{host:?}"
            );
            assert!(
                !refused.unwrap_err().message.contains("evil"),
                "the refusal does not echo the request"
            );
        }
        assert_eq!(status(&[]), Some(421), "no Host at all");
        assert_eq!(
            status(&[("host", "127.0.0.1:2773"), ("host", "evil.example")]),
            Some(421),
            "two Host headers"
        );
        let message = check(&[("host", "evil.example")]).unwrap_err().message;
        assert!(message.contains("Host header"), "{message}");
        assert!(
            message.contains("127.0.0.1:2773 or localhost:2773"),
            "{message}"
        );
    }

    #[test]
    fn an_absolute_target_must_name_the_listener_too() {
        let h = headers(&[("host", "127.0.0.1:2773")]);
        let elsewhere = Uri::from_static("http://evil.example/v1/svid");
        assert_eq!(
            own().check(&h, &elsewhere).map_err(|r| r.status),
            Err(StatusCode::MISDIRECTED_REQUEST)
        );
        let here = Uri::from_static("http://localhost:2773/v1/svid");
        assert_eq!(own().check(&h, &here), Ok(()));
    }

    #[test]
    fn a_browsers_request_is_forbidden_even_to_the_right_host() {
        for marker in [
            ("origin", "https://evil.example"),
            ("origin", "null"),
            ("origin", "http://localhost:2773"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-mode", "no-cors"),
            ("sec-fetch-dest", "empty"),
            ("sec-fetch-user", "?1"),
        ] {
            let refused = check(&[("host", "localhost:2773"), marker]).unwrap_err();
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{marker:?}");
            assert!(refused.message.contains("browser"), "{}", refused.message);
        }
        let message = check(&[("host", "localhost:2773"), ("sec-fetch-mode", "cors")])
            .unwrap_err()
            .message;
        assert!(message.starts_with("Sec-Fetch-Mode header"), "{message}");
        let message = check(&[
            ("host", "localhost:2773"),
            ("origin", "https://evil.example"),
        ])
        .unwrap_err()
        .message;
        assert!(message.starts_with("Origin header"), "{message}");
        assert!(!message.contains("evil"), "{message}");
    }

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(split_authority("a:1"), Some(("a", Some("1"))));
        assert_eq!(split_authority("a"), Some(("a", None)));
        assert_eq!(split_authority("[::1]:1"), Some(("::1", Some("1"))));
        assert_eq!(split_authority("[::1]"), Some(("::1", None)));
        assert_eq!(split_authority("[::1]x"), None);
        assert_eq!(split_authority("::1:80"), None);
        assert_eq!(split_authority("[::1"), None);
        assert_eq!(split_authority("[127.0.0.1]:1"), None);
        assert_eq!(split_authority("u@a:1"), None);
        assert_eq!(split_authority(""), None);
    }
}
