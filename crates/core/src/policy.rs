//! The policy step between an event's construction and its recording: whether the audit level
//! keeps it, and the derived compliance fields (classification, review flag, expiry).
//!
//! Deriving here, not in the builder, means an event read from JSON and one built in Rust get
//! exactly the same treatment, and a deployment's retention table applies to both.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Span;
use serde::{Deserialize, Serialize};

use crate::classification::{derive_classification, derive_requires_review};
use crate::error::ModelError;
use crate::event::AuditEvent;
use crate::retention::{Retention, RetentionKind, add_span};
use crate::retention_classes::RetentionClasses;

/// How much is audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditLevel {
    /// Nothing is recorded (auditing turned off by configuration).
    Off,
    /// Writes and executions only: plain `READ` and `ACCESS` events are skipped.
    Writes,
    /// Every event.
    #[default]
    All,
}

impl FromStr for AuditLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(AuditLevel::Off),
            "writes" => Ok(AuditLevel::Writes),
            "all" => Ok(AuditLevel::All),
            _ => Err(format!(
                "unknown audit level `{s}` (expected off, writes or all)"
            )),
        }
    }
}

impl fmt::Display for AuditLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuditLevel::Off => "off",
            AuditLevel::Writes => "writes",
            AuditLevel::All => "all",
        })
    }
}

/// The deployment's policy. `Policy::default()` records everything, keeps records forever
/// unless an event says otherwise, and knows the named retentions `short` (30 days),
/// `standard` (1 year) and `extended` (7 years).
#[derive(Debug, Clone)]
pub struct Policy {
    pub level: AuditLevel,
    /// The retention of events that name none. `None` keeps them until erased by hand.
    pub default_retention: Option<Retention>,
    /// Named retention policies: name → duration.
    pub named_retention: BTreeMap<String, Span>,
    /// The deployment's retention classes (`--retention-policy`): an event that names no
    /// retention gets its class's, before `default_retention`.
    pub classes: RetentionClasses,
}

impl Default for Policy {
    fn default() -> Self {
        let named_retention = [
            ("short", Span::new().days(30)),
            ("standard", Span::new().years(1)),
            ("extended", Span::new().years(7)),
        ]
        .into_iter()
        .map(|(name, span)| (name.to_string(), span))
        .collect();
        Policy {
            level: AuditLevel::All,
            default_retention: None,
            named_retention,
            classes: RetentionClasses::default(),
        }
    }
}

impl Policy {
    /// Whether the audit level keeps this event.
    pub fn admits(&self, event: &AuditEvent) -> bool {
        match self.level {
            AuditLevel::Off => false,
            AuditLevel::Writes => event.action.is_write_or_execute(),
            AuditLevel::All => true,
        }
    }

    /// The error of a retention name the table does not define, listing those it does.
    fn unknown_retention(&self, name: &str) -> ModelError {
        let mut known: Vec<&str> = self.named_retention.keys().map(String::as_str).collect();
        known.extend(self.classes.classes().iter().map(|c| c.name.as_str()));
        ModelError::UnknownRetentionPolicy {
            name: name.to_string(),
            known: known.join(", "),
        }
    }

    /// How long `retention` keeps an event (`None`: forever), through the named table and the
    /// retention classes (a class's retention is a duration, `forever` or a named one).
    fn span_of(&self, retention: &Retention) -> Result<Option<Span>, ModelError> {
        match retention.kind() {
            RetentionKind::Duration(span) => Ok(Some(span)),
            RetentionKind::Forever => Ok(None),
            RetentionKind::Named(name) => {
                if let Some(span) = self.named_retention.get(name) {
                    return Ok(Some(*span));
                }
                match self.classes.get(name).map(|c| c.retention.kind()) {
                    Some(RetentionKind::Duration(span)) => Ok(Some(span)),
                    Some(RetentionKind::Forever) => Ok(None),
                    Some(RetentionKind::Named(builtin)) => self
                        .named_retention
                        .get(builtin)
                        .map(|s| Some(*s))
                        .ok_or_else(|| self.unknown_retention(builtin)),
                    None => Err(self.unknown_retention(name)),
                }
            }
        }
    }

    /// The named retentions a retention class may refer to.
    pub fn builtin_names(&self) -> Vec<&str> {
        self.named_retention.keys().map(String::as_str).collect()
    }

    /// Fills the derived compliance fields: classification and review flag (explicit values
    /// win), and `expires_at` from the event's retention or the default one, unless given.
    pub fn apply(&self, event: &mut AuditEvent) -> Result<(), ModelError> {
        let resource_type = event.target.resource_type.as_deref();
        let classification =
            derive_classification(event.compliance.classification, resource_type, event.kind);
        let review = derive_requires_review(
            event.compliance.requires_review,
            classification,
            &event.action,
            resource_type,
        );
        event.compliance.classification = Some(classification);
        event.compliance.requires_review = Some(review);

        if event.compliance.expires_at.is_none() {
            let retention = match &event.compliance.retention {
                Some(retention) => Some(retention.clone()),
                None => match self.classes.class_of(event) {
                    // A class name is a valid retention name (checked when the file was read).
                    Some(class) => Some(Retention::parse(&class.name)?),
                    None => self.default_retention.clone(),
                },
            };
            if let Some(retention) = retention {
                let span = self.span_of(&retention)?;
                event.compliance.expires_at = span.and_then(|s| add_span(event.timestamp, s));
                if event.compliance.retention.is_none() {
                    event.compliance.retention = Some(retention);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::{Action, Classification};

    fn at(ts: &str) -> Timestamp {
        ts.parse().unwrap()
    }

    #[test]
    fn retention_on_the_event_sets_expires_at() {
        let mut e = AuditEvent::tool_execution("t")
            .timestamp(at("2026-01-01T00:00:00Z"))
            .retention("30d")
            .build()
            .unwrap();
        Policy::default().apply(&mut e).unwrap();
        assert_eq!(e.compliance.expires_at, Some(at("2026-01-31T00:00:00Z")));
    }

    #[test]
    fn named_and_default_retentions_set_expires_at() {
        let policy = Policy {
            default_retention: Some(Retention::parse("standard").unwrap()),
            ..Policy::default()
        };
        let mut e = AuditEvent::tool_execution("t")
            .timestamp(at("2026-01-01T00:00:00Z"))
            .build()
            .unwrap();
        policy.apply(&mut e).unwrap();
        assert_eq!(e.compliance.expires_at, Some(at("2027-01-01T00:00:00Z")));
        assert_eq!(
            e.compliance.retention.as_ref().map(|r| r.as_str()),
            Some("standard")
        );
    }

    #[test]
    fn unknown_named_retention_is_an_error() {
        let mut e = AuditEvent::tool_execution("t")
            .retention("bogus")
            .build()
            .unwrap();
        let error = Policy::default().apply(&mut e).unwrap_err();
        assert_eq!(
            error,
            ModelError::UnknownRetentionPolicy {
                name: "bogus".to_string(),
                known: "extended, short, standard".to_string()
            }
        );
        let message = error.to_string();
        for name in ["`bogus`", "extended", "short", "standard"] {
            assert!(message.contains(name), "{name} missing from: {message}");
        }
    }

    #[test]
    fn a_retention_class_sets_expires_at_and_records_its_name() {
        let text = "[[class]]\nname = \"restricted-tools\"\nkind = \"tool_execution\"\nclassification = \"restricted\"\nretention = \"90d\"\n\n[[class]]\nname = \"kept\"\nretention = \"forever\"\n";
        let policy = Policy {
            classes: RetentionClasses::from_toml(text, &Policy::default().builtin_names()).unwrap(),
            default_retention: Some(Retention::parse("30d").unwrap()),
            ..Policy::default()
        };
        let mut restricted = AuditEvent::tool_execution("t")
            .timestamp(at("2026-01-01T00:00:00Z"))
            .classification(Classification::Restricted)
            .build()
            .unwrap();
        policy.apply(&mut restricted).unwrap();
        assert_eq!(
            restricted.compliance.expires_at,
            Some(at("2026-04-01T00:00:00Z"))
        );
        assert_eq!(
            restricted.compliance.retention.as_ref().map(|r| r.as_str()),
            Some("restricted-tools")
        );
        let mut other = AuditEvent::tool_execution("t").build().unwrap();
        policy.apply(&mut other).unwrap();
        assert_eq!(other.compliance.expires_at, None, "class `kept` is forever");
        assert_eq!(
            other.compliance.retention.as_ref().map(|r| r.as_str()),
            Some("kept")
        );
        // The event's own retention wins over its class.
        let mut own = AuditEvent::tool_execution("t")
            .timestamp(at("2026-01-01T00:00:00Z"))
            .classification(Classification::Restricted)
            .retention("1d")
            .build()
            .unwrap();
        policy.apply(&mut own).unwrap();
        assert_eq!(own.compliance.expires_at, Some(at("2026-01-02T00:00:00Z")));
    }

    #[test]
    fn forever_never_expires() {
        let mut e = AuditEvent::tool_execution("t")
            .retention("forever")
            .build()
            .unwrap();
        Policy::default().apply(&mut e).unwrap();
        assert_eq!(e.compliance.expires_at, None);
    }

    #[test]
    fn apply_derives_classification_and_review() {
        let mut e = AuditEvent::admin(Action::Read, "user", "u1")
            .user("bob")
            .build()
            .unwrap();
        Policy::default().apply(&mut e).unwrap();
        assert_eq!(
            e.compliance.classification,
            Some(Classification::Confidential)
        );
        assert_eq!(e.compliance.requires_review, Some(true));
    }

    #[test]
    fn writes_level_skips_reads_and_keeps_writes_and_executions() {
        let policy = Policy {
            level: AuditLevel::Writes,
            ..Policy::default()
        };
        let read = AuditEvent::resource_access("file:///a", Action::Read)
            .build()
            .unwrap();
        let write = AuditEvent::resource_access("file:///a", Action::Update)
            .build()
            .unwrap();
        let exec = AuditEvent::tool_execution("t").build().unwrap();
        assert!(!policy.admits(&read));
        assert!(policy.admits(&write));
        assert!(policy.admits(&exec));
        let off = Policy {
            level: AuditLevel::Off,
            ..Policy::default()
        };
        assert!(!off.admits(&exec));
    }
}
