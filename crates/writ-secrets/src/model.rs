//! Secrets in the shape of AWS Secrets Manager: names with paths, versions with ids, and
//! staging labels that say which version is current, which came before, and which is being
//! rotated in.

use std::collections::BTreeMap;

use ring::rand::{SecureRandom, SystemRandom};

/// The version callers get by default.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The version being rotated in, not yet current.
pub const AWSPENDING: &str = "AWSPENDING";
/// The version that was current before the current one.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
/// The largest secret value, in bytes (as in Secrets Manager).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// What is wrong with a name, a label or a request on the model. Messages say what and
/// how to fix it; they never hold a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A name that is empty or longer than 512 characters.
    #[error("secret name {0:?}: must be 1 to 512 characters")]
    NameLength(String),
    /// A name with a character outside `A-Z a-z 0-9 / _ + = . @ -`.
    #[error("secret name {0:?}: {1:?} is not allowed; use letters, digits and / _ + = . @ -")]
    NameCharacter(String, char),
    /// A name with an empty path segment (`a//b`, `/a`, `a/`).
    #[error("secret name {0:?}: path segments between '/' must not be empty")]
    EmptySegment(String),
    /// A staging label that is not 1 to 256 printable characters without spaces.
    #[error("staging label {0:?}: 1 to 256 printable characters without spaces")]
    Label(String),
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
    /// A label is on a version the request did not name as the one to take it from.
    #[error(
        "staging label {0:?} is on version {1:?}: name that version as the one to remove it from"
    )]
    LabelElsewhere(String, String),
    /// A label was to be taken off a version that does not carry it.
    #[error("staging label {0:?} is not on version {1:?}")]
    LabelNotOn(String, String),
    /// `AWSCURRENT` was to be removed without a version to move to.
    #[error("AWSCURRENT cannot be removed, only moved: name the version to move it to")]
    CurrentNeeded,
    /// A rotation was to finish, but no version is staged `AWSPENDING`.
    #[error("no version is AWSPENDING: there is no rotation to finish")]
    NoRotation,
}

/// Checks a secret name: 1 to 512 characters from `A-Z a-z 0-9 / _ + = . @ -`, with `/`
/// separating non-empty path segments (`prod/orders-db`). The error says what is wrong.
pub fn check_name(name: &str) -> Result<(), ModelError> {
    if name.is_empty() || name.len() > 512 {
        return Err(ModelError::NameLength(name.into()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c)))
    {
        return Err(ModelError::NameCharacter(name.into(), bad));
    }
    if name.split('/').any(str::is_empty) {
        return Err(ModelError::EmptySegment(name.into()));
    }
    Ok(())
}

/// Checks a staging label: 1 to 256 printable ASCII characters, no spaces.
pub fn check_label(label: &str) -> Result<(), ModelError> {
    if label.is_empty() || label.len() > 256 || !label.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ModelError::Label(label.into()));
    }
    Ok(())
}

/// A new version id: 128 random bits in hex.
pub fn new_version_id() -> Result<String, ModelError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ModelError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A secret's staging labels: each label names exactly one version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// Labels from stored (label, version id) pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Labels {
        Labels(pairs.into_iter().collect())
    }

    /// The (label, version id) pairs, by label.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(l, v)| (l.as_str(), v.as_str()))
    }

    /// The version a label names.
    pub fn version(&self, label: &str) -> Option<&str> {
        self.0.get(label).map(String::as_str)
    }

    /// The labels on a version.
    pub fn of(&self, version_id: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(_, v)| v.as_str() == version_id)
            .map(|(l, _)| l.as_str())
            .collect()
    }

    /// A new value becomes current: AWSCURRENT moves to `version_id`, and the version it
    /// leaves becomes AWSPREVIOUS.
    pub fn make_current(&mut self, version_id: &str) {
        if let Some(old) = self.0.insert(AWSCURRENT.into(), version_id.into())
            && old != version_id
        {
            self.0.insert(AWSPREVIOUS.into(), old);
        }
        if self.version(AWSPENDING) == Some(version_id) {
            self.0.remove(AWSPENDING);
        }
    }

    /// A rotation stages `version_id` as AWSPENDING; AWSCURRENT does not move.
    pub fn stage_pending(&mut self, version_id: &str) {
        self.0.insert(AWSPENDING.into(), version_id.into());
    }

    /// A rotation that passed every step: the pending version becomes current.
    pub fn finish_rotation(&mut self) -> Result<(), ModelError> {
        let pending = self
            .version(AWSPENDING)
            .ok_or(ModelError::NoRotation)?
            .to_string();
        self.make_current(&pending);
        Ok(())
    }

    /// Moves `label` as Secrets Manager's `UpdateSecretVersionStage` does: onto version
    /// `to`, off version `from`, or both. A label on a version must be taken off that
    /// version by naming it in `from`; `AWSCURRENT` cannot be taken off without a
    /// version to move to, and the version it leaves becomes `AWSPREVIOUS`. The caller
    /// checks that `to` exists.
    pub fn move_label(
        &mut self,
        label: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), ModelError> {
        check_label(label)?;
        let holder = self.version(label).map(str::to_string);
        if let Some(h) = &holder
            && from != Some(h.as_str())
            && to != Some(h.as_str())
        {
            return Err(ModelError::LabelElsewhere(label.into(), h.clone()));
        }
        if let Some(f) = from
            && holder.as_deref() != Some(f)
        {
            return Err(ModelError::LabelNotOn(label.into(), f.into()));
        }
        match to {
            Some(v) if label == AWSCURRENT => self.make_current(v),
            Some(v) => {
                self.0.insert(label.into(), v.into());
            }
            None if label == AWSCURRENT => return Err(ModelError::CurrentNeeded),
            None => {
                self.0.remove(label);
            }
        }
        Ok(())
    }

    /// A rotation that failed: AWSPENDING is removed; AWSCURRENT stays as it was.
    pub fn cancel_rotation(&mut self) {
        self.0.remove(AWSPENDING);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_secrets_manager_rules() {
        for ok in [
            "prod/orders-db",
            "a",
            "team_a/x+y=z.w@host-1",
            &"n".repeat(512),
        ] {
            check_name(ok).unwrap();
        }
        for bad in [
            "",
            "/lead",
            "trail/",
            "a//b",
            "sp ace",
            "semi;colon",
            "ünïcode",
            &"n".repeat(513),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("a b").unwrap_err().to_string().contains("' '"));
        check_label("MYLABEL").unwrap();
        assert!(check_label("has space").is_err());
        assert_ne!(new_version_id().unwrap(), new_version_id().unwrap());
    }

    #[test]
    fn a_rotation_moves_current_only_when_it_finishes() {
        let mut l = Labels::default();
        l.make_current("v1");
        assert_eq!(l.version(AWSCURRENT), Some("v1"));
        assert_eq!(l.version(AWSPREVIOUS), None);
        l.stage_pending("v2");
        assert_eq!(l.version(AWSCURRENT), Some("v1"), "pending is not current");
        l.cancel_rotation();
        assert_eq!(l.version(AWSCURRENT), Some("v1"));
        assert_eq!(l.version(AWSPENDING), None);
        assert!(l.finish_rotation().is_err());
        l.stage_pending("v3");
        l.finish_rotation().unwrap();
        assert_eq!(l.version(AWSCURRENT), Some("v3"));
        assert_eq!(l.version(AWSPREVIOUS), Some("v1"));
        assert_eq!(l.version(AWSPENDING), None);
        assert_eq!(l.of("v3"), [AWSCURRENT]);
    }

    #[test]
    fn labels_move_as_update_secret_version_stage_does() {
        let mut l = Labels::default();
        l.make_current("v1");
        l.make_current("v2");
        // AWSCURRENT moves back; the version it leaves becomes AWSPREVIOUS.
        assert!(l.move_label(AWSCURRENT, Some("v1"), None).is_err());
        l.move_label(AWSCURRENT, Some("v1"), Some("v2")).unwrap();
        assert_eq!(l.version(AWSCURRENT), Some("v1"));
        assert_eq!(l.version(AWSPREVIOUS), Some("v2"));
        assert!(l.move_label(AWSCURRENT, None, Some("v1")).is_err());
        l.move_label("MINE", Some("v2"), None).unwrap();
        assert!(l.move_label("MINE", None, Some("v1")).is_err());
        l.move_label("MINE", None, Some("v2")).unwrap();
        assert_eq!(l.version("MINE"), None);
    }

    proptest! {
        /// After any sequence of puts, the last put is current and the one before it is
        /// previous; AWSCURRENT always names exactly one version.
        #[test]
        fn puts_keep_current_and_previous_in_order(ids in proptest::collection::vec("[a-d]", 1..12)) {
            let mut l = Labels::default();
            let mut history: Vec<String> = Vec::new();
            for id in &ids {
                l.make_current(id);
                if history.last() != Some(id) {
                    history.push(id.clone());
                }
            }
            prop_assert_eq!(l.version(AWSCURRENT), history.last().map(String::as_str));
            if history.len() >= 2 {
                prop_assert_eq!(l.version(AWSPREVIOUS), Some(history[history.len() - 2].as_str()));
            }
        }
    }
}
