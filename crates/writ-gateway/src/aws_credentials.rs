//! The gateway's AWS credentials, for signing Lambda Invoke requests: the environment part
//! of the standard provider chain (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`), and the region from `AWS_REGION` or `AWS_DEFAULT_REGION`.
//!
//! The keys are never logged: [`writ_sigv4::Credentials`]' `Debug` shows the access key id
//! only, and errors name the variables, never their values.

use std::sync::{Arc, PoisonError, RwLock};

use writ_sigv4::Credentials;

/// The gateway's AWS credentials, shared by every Lambda route.
pub struct AwsCredentials {
    current: RwLock<Arc<Credentials>>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("current", &*self.current())
            .finish()
    }
}

impl AwsCredentials {
    /// The credentials the environment gives, read through `var` (the process's
    /// environment, or a test's): `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, with
    /// `AWS_SESSION_TOKEN` for temporary credentials. Fails, naming what is missing, when
    /// there are none.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<AwsCredentials, String> {
        let get = |k: &str| var(k).filter(|v| !v.is_empty());
        let creds = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => {
                let c = Credentials::new(id, secret);
                match get("AWS_SESSION_TOKEN") {
                    Some(token) => c.with_session_token(token),
                    None => c,
                }
            }
            (Some(_), None) => {
                return Err("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into());
            }
            (None, Some(_)) => {
                return Err("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into());
            }
            (None, None) => {
                return Err(
                    "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials) in the gateway's environment"
                        .into(),
                );
            }
        };
        Ok(AwsCredentials::fixed(creds))
    }

    /// Credentials that do not change.
    pub fn fixed(creds: Credentials) -> AwsCredentials {
        AwsCredentials {
            current: RwLock::new(Arc::new(creds)),
        }
    }

    /// The credentials to sign with now.
    pub fn current(&self) -> Arc<Credentials> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The region the environment names: `AWS_REGION`, else `AWS_DEFAULT_REGION`.
pub fn region_from_env(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    var("AWS_REGION")
        .filter(|v| !v.is_empty())
        .or_else(|| var("AWS_DEFAULT_REGION").filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn credentials_come_from_the_environment_and_never_show_the_secret() {
        let c = AwsCredentials::from_env(env(&[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
            ("AWS_SESSION_TOKEN", "token-secret"),
        ]))
        .unwrap();
        let now = c.current();
        assert_eq!(now.access_key_id, "AKIDEXAMPLE");
        assert_eq!(now.session_token.as_deref(), Some("token-secret"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("very-secret") && !shown.contains("token-secret"),
            "{shown}"
        );
        let e = AwsCredentials::from_env(env(&[("AWS_ACCESS_KEY_ID", "AKID")])).unwrap_err();
        assert!(e.contains("AWS_SECRET_ACCESS_KEY is not"), "{e}");
        let e = AwsCredentials::from_env(env(&[])).unwrap_err();
        assert!(e.contains("no AWS credentials"), "{e}");
    }

    #[test]
    fn the_region_is_aws_region_then_aws_default_region() {
        assert_eq!(
            region_from_env(env(&[
                ("AWS_REGION", "eu-west-1"),
                ("AWS_DEFAULT_REGION", "x")
            ])),
            Some("eu-west-1".into())
        );
        assert_eq!(
            region_from_env(env(&[("AWS_DEFAULT_REGION", "us-east-2")])),
            Some("us-east-2".into())
        );
        assert_eq!(region_from_env(env(&[])), None);
    }
}
