//! Fuzzes the Lambda upstream's reading of a function's answer and of the Invoke API's
//! refusals (`writ_gateway::lambda`): nothing may panic on any bytes, and an answer that
//! is read gives a status from 100 to 599 and headers that can be sent, with none of the
//! framing headers the gateway sets itself.
//!
//! The input is the payload as it is; when it is JSON, an object with `statusCode` is also
//! built around it (as `body` and as `headers`), so that the structured form is reached
//! often.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_gateway::lambda::{answer, function_error_type, invoke_error};

fn check(payload: &[u8]) {
    if let Ok(a) = answer(payload) {
        assert!((100..=599).contains(&a.status.as_u16()));
        for name in ["content-length", "transfer-encoding", "connection"] {
            assert!(a.headers.get(name).is_none(), "{name} from the function");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let _ = function_error_type("Unhandled", data);
    for status in [403u16, 404, 429, 500] {
        let status = hyper::StatusCode::from_u16(status).expect("a status");
        let kind = std::str::from_utf8(data).ok();
        let e = invoke_error(status, kind, data);
        assert!(e.message.chars().count() <= 200);
        assert!(!e.kind.is_empty());
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let shaped = [
            serde_json::json!({"statusCode": 200, "body": value, "isBase64Encoded": true}),
            serde_json::json!({"statusCode": 200, "headers": value, "cookies": value}),
            serde_json::json!({"statusCode": value, "multiValueHeaders": value}),
        ];
        for s in shaped {
            check(s.to_string().as_bytes());
        }
    }
});
