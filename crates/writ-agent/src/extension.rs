//! The AWS Lambda Extensions API: with `AWS_LAMBDA_RUNTIME_API` set, the agent registers as
//! an external extension for INVOKE and SHUTDOWN events, and leaves when told to shut down.

use serde_json::{Value, json};

/// The extension's name, as Lambda lists it.
pub const NAME: &str = "writ-agent";

/// Registers with the Extensions API at `api` (`HOST:PORT`) and returns the extension id.
pub async fn register(client: &reqwest::Client, api: &str) -> Result<String, String> {
    let response = client
        .post(format!("http://{api}/2020-01-01/extension/register"))
        .header("Lambda-Extension-Name", NAME)
        .json(&json!({"events": ["INVOKE", "SHUTDOWN"]}))
        .send()
        .await
        .map_err(|e| format!("extension register: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("extension register: {}", response.status()));
    }
    response
        .headers()
        .get("Lambda-Extension-Identifier")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| "extension register: no Lambda-Extension-Identifier".to_string())
}

/// Reports to the Extensions API that the agent could not start (`POST
/// /2020-01-01/extension/init/error`): Lambda then fails the function's initialization with
/// `kind` (`Extension.WritUnavailable`, ...) instead of running it without its identity.
/// `message` must carry no secret: Lambda logs it.
pub async fn init_error(
    client: &reqwest::Client,
    api: &str,
    id: &str,
    kind: &str,
    message: &str,
) -> Result<(), String> {
    let response = client
        .post(format!("http://{api}/2020-01-01/extension/init/error"))
        .header("Lambda-Extension-Identifier", id)
        .header("Lambda-Extension-Function-Error-Type", kind)
        .json(&json!({"errorMessage": message, "errorType": kind}))
        .send()
        .await
        .map_err(|e| format!("extension init error: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("extension init error: {}", response.status()));
    }
    Ok(())
}

/// Waits for events until SHUTDOWN; INVOKE needs nothing of the agent (it serves its
/// endpoints all along). Returns the shutdown reason.
pub async fn run_until_shutdown(
    client: &reqwest::Client,
    api: &str,
    id: &str,
) -> Result<String, String> {
    loop {
        let response = client
            .get(format!("http://{api}/2020-01-01/extension/event/next"))
            .header("Lambda-Extension-Identifier", id)
            .send()
            .await
            .map_err(|e| format!("extension event: {e}"))?;
        let event: Value = response
            .json()
            .await
            .map_err(|e| format!("extension event: {e}"))?;
        match event["eventType"].as_str() {
            Some("SHUTDOWN") => {
                return Ok(event["shutdownReason"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_string());
            }
            Some("INVOKE") => tracing::debug!(request = %event["requestId"], "invoke"),
            other => tracing::warn!(event = ?other, "unexpected extension event"),
        }
    }
}
