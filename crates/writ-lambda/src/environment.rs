//! The state machine of one execution environment, without I/O: the runtime asks for the
//! next invocation, then answers it (response or error) or runs out of time; one
//! invocation at a time. The shell keeps one per environment and asks it whether each
//! Runtime API call is allowed.

/// Where an execution environment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvState {
    /// Started; the runtime has not asked for an invocation yet.
    Initializing,
    /// Waiting in `/invocation/next`, or between invocations.
    Idle,
    /// Running the invocation with this request id.
    Invoking(String),
    /// Gone: it timed out, its runtime exited or reported an init error. It takes no more
    /// invocations.
    Dead,
}

/// How an invocation ended, for [`EnvState::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The runtime posted `/response`.
    Responded,
    /// The runtime posted `/error`: the environment stays, as Lambda keeps it.
    Errored,
    /// The deadline passed: the environment is killed.
    TimedOut,
    /// The runtime exited: the environment is gone.
    Exited,
}

/// A Runtime API call the state does not allow, answered 400 (or 403 for a dead
/// environment) with this error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError {
    /// The Runtime API error type (`InvalidRequestID`, `InvalidStateTransition`).
    pub kind: &'static str,
    /// What is wrong.
    pub message: String,
}

impl EnvState {
    /// The runtime took an invocation from `/invocation/next`.
    pub fn begin(&mut self, request_id: &str) -> Result<(), StateError> {
        match self {
            EnvState::Initializing | EnvState::Idle => {
                *self = EnvState::Invoking(request_id.to_string());
                Ok(())
            }
            EnvState::Invoking(current) => Err(StateError {
                kind: "InvalidStateTransition",
                message: format!(
                    "the runtime asked for the next invocation while {current} is running; \
                     post its response or error first"
                ),
            }),
            EnvState::Dead => Err(dead()),
        }
    }

    /// The invocation `request_id` ended. The runtime's own answers must name the current
    /// invocation; timeouts and exits end whatever runs.
    pub fn finish(&mut self, request_id: &str, how: Finish) -> Result<(), StateError> {
        match (&*self, how) {
            (_, Finish::TimedOut | Finish::Exited) => {
                *self = EnvState::Dead;
                Ok(())
            }
            (EnvState::Invoking(current), _) if current == request_id => {
                *self = EnvState::Idle;
                Ok(())
            }
            (EnvState::Dead, _) => Err(dead()),
            _ => Err(StateError {
                kind: "InvalidRequestID",
                message: format!("{request_id} is not the invocation this environment is running"),
            }),
        }
    }

    /// The runtime reported an init error: the environment is gone.
    pub fn init_failed(&mut self) -> Result<(), StateError> {
        match self {
            EnvState::Initializing => {
                *self = EnvState::Dead;
                Ok(())
            }
            _ => Err(StateError {
                kind: "InvalidStateTransition",
                message: "an init error may only be posted before the first invocation".into(),
            }),
        }
    }
}

fn dead() -> StateError {
    StateError {
        kind: "InvalidStateTransition",
        message: "this execution environment has been shut down".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_invocation_at_a_time() {
        let mut s = EnvState::Initializing;
        s.begin("a").unwrap();
        assert_eq!(s.begin("b").unwrap_err().kind, "InvalidStateTransition");
        assert_eq!(
            s.finish("b", Finish::Responded).unwrap_err().kind,
            "InvalidRequestID"
        );
        s.finish("a", Finish::Responded).unwrap();
        assert_eq!(s, EnvState::Idle);
        assert_eq!(
            s.finish("a", Finish::Responded).unwrap_err().kind,
            "InvalidRequestID"
        );
        s.begin("c").unwrap();
        s.finish("c", Finish::Errored).unwrap();
        assert_eq!(s, EnvState::Idle);
    }

    #[test]
    fn timeouts_kill_the_environment() {
        let mut s = EnvState::Idle;
        s.begin("a").unwrap();
        s.finish("a", Finish::TimedOut).unwrap();
        assert_eq!(s, EnvState::Dead);
        assert!(s.begin("b").is_err());
    }

    #[test]
    fn init_errors_only_before_the_first_invocation() {
        let mut s = EnvState::Initializing;
        s.init_failed().unwrap();
        assert_eq!(s, EnvState::Dead);
        let mut s = EnvState::Idle;
        assert!(s.init_failed().is_err());
    }
}
