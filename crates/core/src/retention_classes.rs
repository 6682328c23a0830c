//! Retention classes: a deployment's table of how long each sort of event is kept, read from a
//! policy file (TOML) and applied by [`crate::Policy::apply`] when an event is recorded.
//!
//! ```toml
//! # The first class that matches an event is its class; a class without criteria matches all.
//! [[class]]
//! name = "restricted-tools"      # recorded as the event's `compliance.retention`
//! kind = "tool_execution"         # criteria, all optional, all must hold:
//! classification = "restricted"   #   kind, classification, server, tool
//! retention = "7y"                # a duration, `forever`, or short / standard / extended
//!
//! [[class]]
//! name = "everything-else"
//! retention = "90d"
//! ```
//!
//! Why the class's *name* is what the event records as its retention (and the duration is
//! looked up through it): `cleanup` lists the retentions an expired entry was kept under, so
//! its reports, and `cleanup --dry-run`'s, say "by class" without a second table; and the
//! name survives a later change of the class's duration, which only applies to new events.
//!
//! This module reads text; the caller reads the file (`core` does no I/O).

use serde::Deserialize;

use crate::classification::Classification;
use crate::event::AuditEvent;
use crate::kind::EventKind;
use crate::retention::{Retention, RetentionKind};

/// One class: which events it covers and how long they are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionClass {
    /// A retention name (lower case, digits, `-`, `_`), recorded as each event's retention.
    pub name: String,
    pub kind: Option<EventKind>,
    /// Compared with the event's classification as the policy derived it.
    pub classification: Option<Classification>,
    /// The event's `target.server_name`.
    pub server: Option<String>,
    /// The operation name of a `tool_execution` event.
    pub tool: Option<String>,
    /// A duration or `forever`; never another class's name.
    pub retention: Retention,
}

impl RetentionClass {
    /// Whether every criterion the class names holds for `event`.
    pub fn matches(&self, event: &AuditEvent) -> bool {
        self.kind.is_none_or(|k| k == event.kind)
            && self
                .classification
                .is_none_or(|c| event.compliance.classification == Some(c))
            && self
                .server
                .as_deref()
                .is_none_or(|s| event.target.server_name.as_deref() == Some(s))
            && self
                .tool
                .as_deref()
                .is_none_or(|t| event.kind == EventKind::ToolExecution && event.operation == t)
    }
}

/// The classes of a policy file, in the file's order (the first match wins).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionClasses {
    classes: Vec<RetentionClass>,
}

/// Why a retention policy file could not be read: always with the line it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionPolicyError {
    /// Malformed TOML, an unknown field, or a value of the wrong type or form.
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    /// One class is wrong as a whole (a repeated name, a retention naming no duration).
    #[error("line {line}: class `{class}`: {message}")]
    Class {
        line: usize,
        class: String,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    #[serde(default)]
    class: Vec<ClassForm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassForm {
    name: toml::Spanned<String>,
    kind: Option<EventKind>,
    classification: Option<Classification>,
    server: Option<String>,
    tool: Option<String>,
    retention: toml::Spanned<Retention>,
}

/// The 1-based line of byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

impl RetentionClasses {
    /// Reads a policy file's text. `builtin` names the retentions a class may refer to
    /// (the policy's named table: `short`, `standard`, `extended`), resolved by the policy.
    pub fn from_toml(
        text: &str,
        builtin: &[&str],
    ) -> Result<RetentionClasses, RetentionPolicyError> {
        let form: FileForm = toml::from_str(text).map_err(|e| RetentionPolicyError::Syntax {
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        let mut classes: Vec<RetentionClass> = Vec::with_capacity(form.class.len());
        for class in form.class {
            let line = line_of(text, class.name.span().start);
            let name = class.name.into_inner();
            let fail = |message: String| RetentionPolicyError::Class {
                line,
                class: name.clone(),
                message,
            };
            let is_name =
                Retention::parse(&name).is_ok_and(|r| matches!(r.kind(), RetentionKind::Named(_)));
            if !is_name {
                return Err(fail(
                    "a class name is lower case letters, digits, `-` and `_`, starting with a letter".into(),
                ));
            }
            if builtin.contains(&name.as_str()) {
                return Err(fail(format!(
                    "`{name}` is a built-in retention; give the class a name of its own"
                )));
            }
            if classes.iter().any(|c| c.name == name) {
                return Err(fail("a second class of this name".into()));
            }
            let retention = class.retention.into_inner();
            if let RetentionKind::Named(other) = retention.kind()
                && !builtin.contains(&other)
            {
                return Err(fail(format!(
                    "retention `{other}` is neither a duration (30d, 6mo, 7y), `forever`, nor one of: {}",
                    builtin.join(", ")
                )));
            }
            classes.push(RetentionClass {
                name,
                kind: class.kind,
                classification: class.classification,
                server: class.server,
                tool: class.tool,
                retention,
            });
        }
        Ok(RetentionClasses { classes })
    }

    /// The first class that matches `event`.
    pub fn class_of(&self, event: &AuditEvent) -> Option<&RetentionClass> {
        self.classes.iter().find(|c| c.matches(event))
    }

    /// The class named `name`.
    pub fn get(&self, name: &str) -> Option<&RetentionClass> {
        self.classes.iter().find(|c| c.name == name)
    }

    pub fn classes(&self) -> &[RetentionClass] {
        &self.classes
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILTIN: &[&str] = &["short", "standard", "extended"];

    #[test]
    fn the_first_matching_class_is_the_events_class() {
        let classes = RetentionClasses::from_toml(
            r#"
[[class]]
name = "github-tools"
kind = "tool_execution"
server = "github"
retention = "7y"

[[class]]
name = "rest"
retention = "standard"
"#,
            BUILTIN,
        )
        .unwrap();
        let github = AuditEvent::tool_execution("create_issue")
            .server("github")
            .build()
            .unwrap();
        let other = AuditEvent::tool_execution("create_issue")
            .server("files")
            .build()
            .unwrap();
        assert_eq!(classes.class_of(&github).unwrap().name, "github-tools");
        assert_eq!(classes.class_of(&other).unwrap().name, "rest");
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_line() {
        let error = RetentionClasses::from_toml(
            "[[class]]\nname = \"a\"\nretention = \"30d\"\ncolour = \"red\"\n",
            BUILTIN,
        )
        .unwrap_err();
        let RetentionPolicyError::Syntax { line, message } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(*line, 4, "{message}");
        assert!(message.contains("colour"), "{message}");
    }

    #[test]
    fn malformed_toml_and_bad_values_name_their_line() {
        for (text, want) in [
            ("[[class]]\nname = \"a\"\nretention = 30d\n", 3),
            ("[[class]]\nname = \"a\"\nretention = \"30 parsecs\"\n", 3),
            (
                "[[class]]\nname = \"a\"\nkind = \"teleport\"\nretention = \"1y\"\n",
                3,
            ),
        ] {
            match RetentionClasses::from_toml(text, BUILTIN).unwrap_err() {
                RetentionPolicyError::Syntax { line, .. } => assert_eq!(line, want, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_repeated_name_or_an_unknown_retention_name_is_refused() {
        let repeated = "[[class]]\nname = \"a\"\nretention = \"1y\"\n\n[[class]]\nname = \"a\"\nretention = \"2y\"\n";
        assert!(matches!(
            RetentionClasses::from_toml(repeated, BUILTIN).unwrap_err(),
            RetentionPolicyError::Class { line: 6, .. }
        ));
        let unknown = "[[class]]\nname = \"a\"\nretention = \"eternal\"\n";
        let error = RetentionClasses::from_toml(unknown, BUILTIN).unwrap_err();
        assert!(error.to_string().contains("`eternal`"), "{error}");
    }
}
