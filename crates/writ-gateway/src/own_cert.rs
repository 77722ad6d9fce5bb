//! The gateway's own TLS certificate: from the files `[tls] cert` and `key`, or issued by
//! writ (`[tls] from_writ`). With writ, the gateway logs in as
//! `spiffe://TD/writ/gateway/NAME` at start (failing closed, with the server's answer, if
//! it cannot), serves the X.509-SVID writ issued it (which carries the DNS names and IP
//! addresses the operator registered it with), and renews it at half its life with the
//! same logic as the agent ([`writ_client::identity::keep_fresh`]): each new connection
//! gets the current certificate, and while renewals fail the last one is served until it
//! expires, with each failure logged.

use std::sync::Arc;
use std::time::Duration;

use writ_client::identity::{Evidence, Identity, Subject};

use crate::config::{Attest, Config, FromWrit};

/// How long the gateway keeps trying at start while the server cannot be reached or
/// fails (no answer, or a 5xx); a refusal ends it at once.
const LOGIN_BUDGET: Duration = Duration::from_secs(30);

/// The server configuration for the gateway's certificate, as its config says.
pub async fn server_config(config: &Config) -> Result<rustls::ServerConfig, String> {
    match (&config.tls.from_writ, &config.tls.cert, &config.tls.key) {
        (Some(from), _, _) => {
            let identity = login(config, from).await?;
            tracing::info!(
                spiffe_id = %identity.svid().spiffe_id,
                serial = %identity.svid().serial,
                not_after = identity.svid().not_after,
                "serving the certificate writ issued"
            );
            let source = identity.source.clone();
            tokio::spawn(writ_client::identity::keep_fresh(identity));
            crate::tls::server_config_resolving(source)
        }
        (None, Some(cert), Some(key)) => {
            let read = |p: &std::path::Path, what: &str| {
                std::fs::read_to_string(p).map_err(|e| format!("{what} {}: {e}", p.display()))
            };
            crate::tls::server_config(&read(cert, "tls.cert")?, &read(key, "tls.key")?)
        }
        // config::check refused these.
        _ => Err("tls: give cert and key, or from_writ".into()),
    }
}

/// The evidence `from` names.
pub fn evidence(from: &FromWrit) -> Result<Evidence, String> {
    let file = || {
        from.token_file
            .clone()
            .ok_or_else(|| "tls.from_writ.token_file: missing".to_string())
    };
    Ok(match from.attest {
        Attest::JoinToken => {
            let path = file()?;
            let token = std::fs::read_to_string(&path)
                .map_err(|e| format!("tls.from_writ.token_file {}: {e}", path.display()))?;
            let token = token.trim();
            if token.is_empty() {
                return Err(format!(
                    "tls.from_writ.token_file {}: empty",
                    path.display()
                ));
            }
            Evidence::JoinToken(token.to_string())
        }
        Attest::Oidc => Evidence::OidcFile(file()?),
        Attest::AwsIam => Evidence::AwsIam {
            server_id: from.aws_iam_server_id.clone(),
        },
    })
}

/// Logs in to writ as the gateway `from.name`; the error says why, with the server's
/// answer (a refused join token, a name the gateway was not registered with).
async fn login(config: &Config, from: &FromWrit) -> Result<Arc<Identity>, String> {
    let ca_pem = std::fs::read_to_string(&config.server.ca_file)
        .map_err(|e| format!("server.ca_file {}: {e}", config.server.ca_file.display()))?;
    let evidence = evidence(from)?;
    let subject = Subject::Gateway {
        name: from.name.clone(),
        names: from.names.clone(),
    };
    Identity::attest_as(
        &config.server.addr,
        &ca_pem,
        &subject,
        &evidence,
        None,
        LOGIN_BUDGET,
    )
    .await
    .map_err(|e| {
        format!(
            "tls.from_writ: could not get the gateway's certificate from writ as gateway {:?}: {}",
            from.name, e.message
        )
    })
}
