//! Fuzzes the agent's guard against DNS rebinding and cross-site requests
//! (`writ_agent::guard::OwnAddress::check`): arbitrary bytes as the `Host` header of a
//! request to a listener on 127.0.0.1:8080. Never a panic, and a request is let through
//! only when a plain model agrees that `Host` names the listener: `127.0.0.1` or
//! `localhost` (any case), then `:` and a number that is 8080.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_agent::guard::OwnAddress;

fuzz_target!(|data: &[u8]| {
    let guard = OwnAddress::new("127.0.0.1:8080".parse().unwrap());
    let Ok(value) = hyper::header::HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = hyper::HeaderMap::new();
    headers.insert(hyper::header::HOST, value);
    let uri = hyper::Uri::from_static("/v1/secret");
    if guard.check(&headers, &uri).is_ok() {
        let text = std::str::from_utf8(data).expect("an accepted Host is text");
        let (host, port) = text.rsplit_once(':').expect("an accepted Host has a port");
        let host = host.to_ascii_lowercase();
        assert!(host == "127.0.0.1" || host == "localhost", "{text:?}");
        assert_eq!(port.parse::<u16>().ok(), Some(8080), "{text:?}");
    }
});
