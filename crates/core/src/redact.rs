//! Redaction: what a policy takes out of an event's payload before the event is sealed.
//!
//! The recorder runs a [`Redactor`] on every event after the audit policy and before
//! [`crate::seal`], so the commitment, the stored payload and every later export hold only the
//! redacted form: a secret never reaches the database, the write-ahead log or a hash that could
//! be guessed back. What was done is recorded in the hashed metadata as rule ids and counts
//! ([`crate::Redaction`] in `compliance.redactions`), never the values, so an auditor can tell a
//! redacted argument from an absent one.
//!
//! Three ways a rule finds what to redact:
//! - a **pattern** (a regular expression, optionally confirmed by a checksum: Luhn for card
//!   numbers, mod-97 for IBANs, the number rules of US SSNs) searched in every string of the
//!   payload; the match is replaced;
//! - **keys** (a regular expression over object member names): the member's whole value is
//!   replaced, whatever its type;
//! - **paths** alone: the whole value at a JSON path (for `truncate` of a large result).
//!
//! Why one [`RegexSet`] before each rule's own [`Regex`]: almost every string of a payload holds
//! no secret, and the set answers "does any pattern match here?" in one pass over the string
//! with one automaton, however many rules there are. Only the rules that matched then run their
//! own regex to find and replace the matches (a set can say *which* patterns match, not where).
//!
//! Paths use a small subset of JSONPath, rooted at the payload:
//!
//! ```text
//! path    = "$" segment+
//! segment = "." name | ".*" | "[*]" | "[" digits "]" | "[\"" name "\"]"
//! ```
//!
//! The first segment names a payload field (`input`, `output`, `error_message`, ...) or is `*`.
//! `*` matches any one member name, `[*]` any one array element. A pattern or keys rule with
//! paths applies at or below them; a paths-only rule replaces the value at the path itself.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use hmac::{Hmac, Mac};
use regex::{Regex, RegexSet};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use crate::event::{AuditEvent, Payload, Redaction};
use crate::national_id::NationalId;

/// The actions a rule may take, as a policy file spells them.
pub const ACTIONS: &[&str] = &["redact", "drop", "mask", "hash", "truncate"];

/// The directions a rule may be scoped to, as a policy file spells them.
pub const DIRECTIONS: &[&str] = &["arguments", "result", "any"];

/// The payload fields a path may start with.
const FIELDS: &[&str] = &[
    "input",
    "output",
    "error_message",
    "old_values",
    "new_values",
    "changes",
    "state_before",
    "state_after",
    "content_preview",
    "context",
    "details",
    "metadata",
];

/// The hashed metadata fields a path may start with: a rule reaches them only through a path
/// that names one (`$.resource_name`, `$.data_sources[*].uri`, ...), never by default, so that
/// what identifies an operation changes only where a policy says so. `operation` is the
/// operation's name (a resource URI for a resource read, which may name a person); rules are
/// scoped by its value as recorded, before any rule changes it. Within a data source,
/// its `uri`, `identifier` and `metadata`; within a compliance event, its `details`.
const METADATA_FIELDS: &[&str] = &[
    "operation",
    "resource_name",
    "resource_id",
    "data_sources",
    "compliance_events",
];

/// The smallest key accepted for `hash`: shorter keys make pseudonyms of short values (a
/// phone number, a card's digits) easy to brute-force.
pub const MIN_KEY_LEN: usize = 16;

/// A built-in detector: its id, what it finds, and whether it is on by default.
struct Builtin {
    id: &'static str,
    find: BuiltinFind,
    secret: bool,
}

enum BuiltinFind {
    Pattern(&'static str, Check),
    Keys(&'static str),
}

/// Object member names whose values are secrets: `password`, `db_password`, `apiKey`,
/// `client-secret`, `Authorization`... but not `max_tokens` or `tokenizer`.
const SECRET_KEYS: &str = concat!(
    // snake, kebab, dotted or whole names, in any case
    r"^(?:(?i:(?:.*[_.\-])?(?:password|passwd|secret|client_secret|token|access_token|",
    r"refresh_token|id_token|auth_token|api_?key|api-key|apikey|authorization|",
    r"proxy-authorization|private_?key|private-key|access_?key|secret_?key|credentials?|",
    r"cookie|set-cookie))",
    // camelCase
    r"|.*[a-z0-9](?:Password|Passwd|Secret|Token|ApiKey|Apikey|PrivateKey|AccessKey|SecretKey|",
    r"Credentials?))$",
);

const BUILTINS: &[Builtin] = &[
    Builtin {
        id: "bearer",
        find: BuiltinFind::Pattern(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}=*", Check::None),
        secret: true,
    },
    Builtin {
        id: "jwt",
        find: BuiltinFind::Pattern(
            r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}",
            Check::None,
        ),
        secret: true,
    },
    Builtin {
        id: "private-key",
        find: BuiltinFind::Pattern(
            r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
            Check::None,
        ),
        secret: true,
    },
    Builtin {
        id: "aws-access-key",
        find: BuiltinFind::Pattern(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", Check::None),
        secret: true,
    },
    Builtin {
        id: "github-token",
        find: BuiltinFind::Pattern(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
            Check::None,
        ),
        secret: true,
    },
    Builtin {
        id: "gitlab-token",
        find: BuiltinFind::Pattern(r"\bglpat-[A-Za-z0-9_-]{20,}", Check::None),
        secret: true,
    },
    Builtin {
        id: "slack-token",
        find: BuiltinFind::Pattern(r"\bxox[abpr]-[A-Za-z0-9-]{10,}", Check::None),
        secret: true,
    },
    Builtin {
        id: "llm-api-key",
        find: BuiltinFind::Pattern(r"\bsk-(?:ant-)?[A-Za-z0-9_-]{20,}", Check::None),
        secret: true,
    },
    Builtin {
        id: "secret-keys",
        find: BuiltinFind::Keys(SECRET_KEYS),
        secret: true,
    },
    Builtin {
        id: "email",
        find: BuiltinFind::Pattern(
            r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
            Check::None,
        ),
        secret: false,
    },
    Builtin {
        id: "phone",
        find: BuiltinFind::Pattern(
            r"(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}|\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4})\b",
            Check::Phone,
        ),
        secret: false,
    },
    Builtin {
        id: "card",
        find: BuiltinFind::Pattern(r"\b\d(?:[ -]?\d){12,18}\b", Check::Luhn),
        secret: false,
    },
    Builtin {
        id: "us-ssn",
        find: BuiltinFind::Pattern(r"\b\d{3}[- ]\d{2}[- ]\d{4}\b", Check::Ssn),
        secret: false,
    },
    Builtin {
        id: "iban",
        find: BuiltinFind::Pattern(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", Check::Iban),
        secret: false,
    },
    Builtin {
        id: "uk-nino",
        find: BuiltinFind::Pattern(
            r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
            Check::National(NationalId::UkNino),
        ),
        secret: false,
    },
    Builtin {
        id: "de-steuer-id",
        find: BuiltinFind::Pattern(
            r"\b[1-9]\d ?\d{3} ?\d{3} ?\d{3}\b",
            Check::National(NationalId::DeSteuerId),
        ),
        secret: false,
    },
    Builtin {
        id: "fr-nir",
        find: BuiltinFind::Pattern(
            r"\b[1-478] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b",
            Check::National(NationalId::FrNir),
        ),
        secret: false,
    },
    Builtin {
        id: "es-dni",
        find: BuiltinFind::Pattern(
            r"\b(?:\d{8}|[XYZ]\d{7})-?[A-Z]\b",
            Check::National(NationalId::EsDni),
        ),
        secret: false,
    },
    Builtin {
        id: "it-codice-fiscale",
        find: BuiltinFind::Pattern(
            r"\b[A-Z]{6}[0-9LMNP-V]{2}[A-EHLMPR-T][0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{3}[A-Z]\b",
            Check::National(NationalId::ItCodiceFiscale),
        ),
        secret: false,
    },
    Builtin {
        id: "nl-bsn",
        find: BuiltinFind::Pattern(
            r"\b\d{4}\.?\d{2}\.?\d{3}\b",
            Check::National(NationalId::NlBsn),
        ),
        secret: false,
    },
    Builtin {
        id: "in-aadhaar",
        find: BuiltinFind::Pattern(
            r"\b[2-9]\d{3}[ -]?\d{4}[ -]?\d{4}\b",
            Check::National(NationalId::InAadhaar),
        ),
        secret: false,
    },
    Builtin {
        id: "ca-sin",
        find: BuiltinFind::Pattern(
            r"\b\d{3}[ -]?\d{3}[ -]?\d{3}\b",
            Check::National(NationalId::CaSin),
        ),
        secret: false,
    },
    Builtin {
        id: "pl-pesel",
        find: BuiltinFind::Pattern(r"\b\d{11}\b", Check::National(NationalId::PlPesel)),
        secret: false,
    },
    Builtin {
        id: "br-cpf",
        find: BuiltinFind::Pattern(
            r"\b\d{3}\.?\d{3}\.?\d{3}-?\d{2}\b",
            Check::National(NationalId::BrCpf),
        ),
        secret: false,
    },
];

/// A checksum a pattern's match must pass to count, so that a random digit run is not taken
/// for a card number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    None,
    Luhn,
    Iban,
    Phone,
    Ssn,
    /// A national identifier's own check (see `national_id.rs`).
    National(NationalId),
}

/// The checks a policy file's `check = "..."` may name, and what they are.
const CHECKS: &[(&str, Check)] = &[
    ("none", Check::None),
    ("luhn", Check::Luhn),
    ("iban", Check::Iban),
    ("phone", Check::Phone),
    ("ssn", Check::Ssn),
    ("uk-nino", Check::National(NationalId::UkNino)),
    ("de-steuer-id", Check::National(NationalId::DeSteuerId)),
    ("fr-nir", Check::National(NationalId::FrNir)),
    ("es-dni", Check::National(NationalId::EsDni)),
    (
        "it-codice-fiscale",
        Check::National(NationalId::ItCodiceFiscale),
    ),
    ("nl-bsn", Check::National(NationalId::NlBsn)),
    ("in-aadhaar", Check::National(NationalId::InAadhaar)),
    ("ca-sin", Check::National(NationalId::CaSin)),
    ("pl-pesel", Check::National(NationalId::PlPesel)),
    ("br-cpf", Check::National(NationalId::BrCpf)),
];

impl Check {
    fn parse(text: &str) -> Option<Check> {
        CHECKS
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, check)| *check)
    }

    fn passes(self, text: &str) -> bool {
        match self {
            Check::None => true,
            Check::Luhn => luhn(text),
            Check::Iban => iban(text),
            Check::Phone => {
                let digits = text.bytes().filter(u8::is_ascii_digit).count();
                (7..=15).contains(&digits)
            }
            Check::Ssn => ssn(text),
            Check::National(id) => id.check(text),
        }
    }
}

/// The rules a US Social Security number keeps (it has no check digit): area 001 to 899 but
/// not 666, group 01 to 99, serial 0001 to 9999.
fn ssn(text: &str) -> bool {
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 9 {
        return false;
    }
    let number = |range: std::ops::Range<usize>| digits[range].iter().fold(0, |n, d| n * 10 + d);
    let (area, group, serial) = (number(0..3), number(3..5), number(5..9));
    (1..900).contains(&area) && area != 666 && group != 0 && serial != 0
}

/// The Luhn checksum of a card number's digits (separators ignored), 13 to 19 digits.
fn luhn(text: &str) -> bool {
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The ISO 13616 check of an IBAN (spaces ignored): the country and check digits moved to the
/// end, letters as 10..35, the number mod 97 is 1.
fn iban(text: &str) -> bool {
    let compact: Vec<u8> = text.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rest: u32 = 0;
    for &b in tail.iter().chain(head) {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rest = if value >= 10 {
            (rest * 100 + value) % 97
        } else {
            (rest * 10 + value) % 97
        };
    }
    rest == 1
}

/// What a rule does to what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Replace by `[REDACTED:<rule>]`.
    Redact,
    /// Remove the object member (keys and paths rules); in a string, as `Redact`.
    Drop,
    /// Keep the shape (separators, length) and the last few characters; letters and digits
    /// become `*`.
    Mask,
    /// Replace by a keyed HMAC-SHA-256 pseudonym `hmac:<32 hex digits>`: equal values give
    /// equal pseudonyms, so events still join on them, and without the key nobody can test a
    /// guess.
    Hash,
    /// Keep the first N bytes (at a character boundary).
    Truncate(usize),
}

/// Which payload fields a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Every payload field.
    Any,
    /// `input`: tool and prompt arguments, request parameters.
    Arguments,
    /// `output`, `error_message`, `content_preview`.
    Result,
}

impl Direction {
    fn of_field(field: &str) -> Option<Direction> {
        match field {
            "input" => Some(Direction::Arguments),
            "output" | "error_message" | "content_preview" => Some(Direction::Result),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathSeg {
    Key(String),
    AnyKey,
    Index(usize),
    AnyIndex,
}

/// A parsed path (see the module doc for the grammar).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Path(Vec<PathSeg>);

impl Path {
    fn parse(text: &str) -> Result<Path, String> {
        let bad = |why: &str| format!("invalid path `{text}`: {why}");
        let mut rest = text
            .strip_prefix('$')
            .ok_or_else(|| bad("it must start with `$`"))?;
        let mut segs = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix(".*") {
                segs.push(PathSeg::AnyKey);
                rest = after;
            } else if let Some(after) = rest.strip_prefix('.') {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                    .unwrap_or(after.len());
                if end == 0 {
                    return Err(bad("a `.` must be followed by a name or `*`"));
                }
                segs.push(PathSeg::Key(after[..end].to_string()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix("[*]") {
                segs.push(PathSeg::AnyIndex);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("[\"") {
                let end = after
                    .find("\"]")
                    .ok_or_else(|| bad("`[\"` without its `\"]`"))?;
                segs.push(PathSeg::Key(after[..end].to_string()));
                rest = &after[end + 2..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']').ok_or_else(|| bad("`[` without its `]`"))?;
                let index = after[..end]
                    .parse()
                    .map_err(|_| bad("between `[` and `]`: `*`, an index or a quoted name"))?;
                segs.push(PathSeg::Index(index));
                rest = &after[end + 1..];
            } else {
                return Err(bad("expected `.name`, `.*`, `[*]`, `[N]` or `[\"name\"]`"));
            }
        }
        match segs.first() {
            None => Err(bad("it names no payload field")),
            Some(PathSeg::Key(field))
                if !FIELDS.contains(&field.as_str())
                    && !METADATA_FIELDS.contains(&field.as_str()) =>
            {
                Err(bad(&format!(
                    "`{field}` is not a payload or metadata field (expected one of {}, {})",
                    FIELDS.join(", "),
                    METADATA_FIELDS.join(", ")
                )))
            }
            Some(PathSeg::Index(_) | PathSeg::AnyIndex) => {
                Err(bad("the payload is an object: start with `.field` or `.*`"))
            }
            _ => Ok(Path(segs)),
        }
    }

    /// Whether `loc` is this path (`exact`) or at or below it.
    fn covers(&self, loc: &Loc<'_>, exact: bool) -> bool {
        let len = self.0.len();
        if loc.depth < len || (exact && loc.depth != len) {
            return false;
        }
        let mut at = loc;
        while at.depth > len {
            match at.parent {
                Some(parent) => at = parent,
                None => return false,
            }
        }
        let mut node = Some(at);
        for seg in self.0.iter().rev() {
            let Some(here) = node else { return false };
            let fits = match (seg, &here.seg) {
                (PathSeg::Key(k), Seg::Key(s)) => k == s,
                (PathSeg::AnyKey, Seg::Key(_)) => true,
                (PathSeg::Index(i), Seg::Index(j)) => i == j,
                (PathSeg::AnyIndex, Seg::Index(_)) => true,
                _ => false,
            };
            if !fits {
                return false;
            }
            node = here.parent;
        }
        true
    }
}

/// Where a value sits in the payload, as a chain up to the payload field: built on the stack
/// while walking, so that rules without paths cost nothing.
struct Loc<'a> {
    parent: Option<&'a Loc<'a>>,
    seg: Seg<'a>,
    depth: usize,
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> Loc<'a> {
    fn child(&'a self, seg: Seg<'a>) -> Loc<'a> {
        Loc {
            parent: Some(self),
            seg,
            depth: self.depth + 1,
        }
    }
}

/// Where a rule applies.
#[derive(Debug, Clone)]
struct Scope {
    servers: Vec<String>,
    tools: Vec<String>,
    direction: Direction,
    paths: Vec<Path>,
}

impl Scope {
    fn everywhere() -> Scope {
        Scope {
            servers: Vec::new(),
            tools: Vec::new(),
            direction: Direction::Any,
            paths: Vec::new(),
        }
    }

    fn admits_event(&self, server: Option<&str>, tool: &str) -> bool {
        (self.servers.is_empty() || server.is_some_and(|s| self.servers.iter().any(|x| x == s)))
            && (self.tools.is_empty() || self.tools.iter().any(|t| t == tool))
    }

    fn admits_field(&self, direction: Option<Direction>) -> bool {
        self.direction == Direction::Any || direction == Some(self.direction)
    }

    /// Whether a path names a metadata field (see [`METADATA_FIELDS`]).
    fn names_metadata(&self) -> bool {
        self.paths.iter().any(|p| {
            matches!(p.0.first(), Some(PathSeg::Key(k)) if METADATA_FIELDS.contains(&k.as_str()))
        })
    }

    fn admits_place(&self, loc: &Loc<'_>) -> bool {
        self.paths.is_empty() || self.paths.iter().any(|p| p.covers(loc, false))
    }
}

#[derive(Debug, Clone)]
enum Find {
    Pattern { regex: Regex, check: Check },
    Keys(Regex),
    Whole,
}

#[derive(Debug, Clone)]
struct Rule {
    id: String,
    find: Find,
    action: Action,
    scope: Scope,
}

/// A compiled redaction policy. Build one with [`Redactor::secrets`] (the default),
/// [`Redactor::none`] or [`Redactor::from_toml`]; apply it with [`Redactor::redact`].
#[derive(Debug, Clone)]
pub struct Redactor {
    rules: Vec<Rule>,
    /// One automaton over every pattern rule: `set_rules[i]` is the rule of pattern `i`.
    set: RegexSet,
    set_rules: Vec<usize>,
    key_rules: Vec<usize>,
    whole_rules: Vec<usize>,
    /// Whether numbers are searched too (as their JSON text): only when a rule's pattern is
    /// not a built-in secret, since no token shape is all digits.
    scan_numbers: bool,
    key: Option<Hmac<Sha256>>,
}

/// Why a policy could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The TOML is malformed or has a field of the wrong type or name.
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    /// One rule is wrong.
    #[error("line {line}: rule `{rule}`: {message}")]
    Rule {
        line: usize,
        rule: String,
        message: String,
    },
    /// The `[hash]` section is wrong or missing.
    #[error("{0}")]
    Key(String),
    /// The patterns, each valid, are too many or too large together.
    #[error("the policy's patterns together: {0}")]
    Patterns(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    /// Whether the built-in secrets rules stay on.
    #[serde(default = "yes")]
    secrets: bool,
    #[serde(default)]
    hash: Option<HashForm>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleForm>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HashForm {
    key: Option<String>,
    key_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleForm {
    id: toml::Spanned<String>,
    detector: Option<toml::Spanned<String>>,
    pattern: Option<toml::Spanned<String>>,
    keys: Option<toml::Spanned<String>>,
    check: Option<toml::Spanned<String>>,
    action: Option<toml::Spanned<String>>,
    bytes: Option<usize>,
    #[serde(default)]
    servers: Vec<String>,
    #[serde(default)]
    tools: Vec<String>,
    direction: Option<toml::Spanned<String>>,
    #[serde(default)]
    paths: Vec<toml::Spanned<String>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn builtin_rule(b: &Builtin) -> Rule {
    let find = match &b.find {
        BuiltinFind::Pattern(pattern, check) => Find::Pattern {
            regex: Regex::new(pattern).expect("a built-in pattern compiles"),
            check: *check,
        },
        BuiltinFind::Keys(pattern) => {
            Find::Keys(Regex::new(pattern).expect("a built-in pattern compiles"))
        }
    };
    Rule {
        id: b.id.to_string(),
        find,
        action: Action::Redact,
        scope: Scope::everywhere(),
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::secrets()
    }
}

impl Redactor {
    /// The built-in secrets policy: bearer values, JWTs, private-key PEM blocks, cloud,
    /// source-hosting, chat and LLM-provider token shapes, and the values of members named
    /// like passwords, secrets, tokens and API keys; each replaced by `[REDACTED:<rule>]`.
    pub fn secrets() -> Redactor {
        let rules = BUILTINS.iter().filter(|b| b.secret).map(builtin_rule);
        Redactor::build(rules.collect(), None).expect("the built-in rules compile")
    }

    /// The built-in secrets policy, compiled once per process and shared.
    pub fn shared_secrets() -> Arc<Redactor> {
        static SECRETS: OnceLock<Arc<Redactor>> = OnceLock::new();
        SECRETS
            .get_or_init(|| Arc::new(Redactor::secrets()))
            .clone()
    }

    /// A policy that redacts nothing.
    pub fn none() -> Redactor {
        Redactor::build(Vec::new(), None).expect("an empty policy compiles")
    }

    /// The ids of the built-in detectors a policy file may name, and whether each is a
    /// secret (on by default).
    pub fn builtin_detectors() -> impl Iterator<Item = (&'static str, bool)> {
        BUILTINS.iter().map(|b| (b.id, b.secret))
    }

    /// Reads a policy file's text. `read_key` reads the `[hash] key_file` the file names (the
    /// caller resolves it, relative to the policy file; this module does no I/O).
    pub fn from_toml(
        text: &str,
        read_key: impl FnOnce(&str) -> Result<Vec<u8>, String>,
    ) -> Result<Redactor, PolicyError> {
        let form: FileForm = toml::from_str(text).map_err(|e| PolicyError::Syntax {
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        let mut rules: Vec<Rule> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for rule in &form.rules {
            let compiled = compile_rule(text, rule)?;
            if seen.contains(&compiled.id) {
                return Err(PolicyError::Rule {
                    line: line_of(text, rule.id.span().start),
                    rule: compiled.id,
                    message: "a second rule with this id".into(),
                });
            }
            seen.push(compiled.id.clone());
            rules.push(compiled);
        }
        if form.secrets {
            // A file rule with a built-in's id replaces it (to change its action or scope).
            let builtins = BUILTINS
                .iter()
                .filter(|b| b.secret && !seen.iter().any(|s| s == b.id))
                .map(builtin_rule);
            rules.splice(0..0, builtins);
        }
        let key = match form.hash {
            None => None,
            Some(HashForm {
                key: Some(_),
                key_file: Some(_),
            }) => {
                return Err(PolicyError::Key(
                    "[hash]: give `key` or `key_file`, not both".into(),
                ));
            }
            Some(HashForm { key: Some(key), .. }) => Some(key.into_bytes()),
            Some(HashForm {
                key_file: Some(path),
                ..
            }) => {
                let mut bytes = read_key(&path)
                    .map_err(|e| PolicyError::Key(format!("[hash] key_file `{path}`: {e}")))?;
                while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
                    bytes.pop();
                }
                Some(bytes)
            }
            Some(HashForm {
                key: None,
                key_file: None,
            }) => None,
        };
        if let Some(key) = &key
            && key.len() < MIN_KEY_LEN
        {
            return Err(PolicyError::Key(format!(
                "[hash]: the key has {} bytes; at least {MIN_KEY_LEN} are needed",
                key.len()
            )));
        }
        Redactor::build(rules, key)
    }

    fn build(rules: Vec<Rule>, key: Option<Vec<u8>>) -> Result<Redactor, PolicyError> {
        if key.is_none()
            && let Some(rule) = rules.iter().find(|r| r.action == Action::Hash)
        {
            return Err(PolicyError::Key(format!(
                "rule `{}` hashes, but the policy has no key: add [hash] key = \"...\" or key_file = \"...\"",
                rule.id
            )));
        }
        let mut set_rules = Vec::new();
        let mut patterns = Vec::new();
        let mut key_rules = Vec::new();
        let mut whole_rules = Vec::new();
        let mut scan_numbers = false;
        for (i, rule) in rules.iter().enumerate() {
            match &rule.find {
                Find::Pattern { regex, .. } => {
                    set_rules.push(i);
                    patterns.push(regex.as_str().to_string());
                    let builtin_secret = BUILTINS.iter().any(|b| {
                        b.secret
                            && matches!(b.find, BuiltinFind::Pattern(p, _) if p == regex.as_str())
                    });
                    scan_numbers |= !builtin_secret;
                }
                Find::Keys(_) => key_rules.push(i),
                Find::Whole => whole_rules.push(i),
            }
        }
        let set = RegexSet::new(&patterns)
            .map_err(|e| PolicyError::Patterns(one_line(&e.to_string())))?;
        let key = match key {
            None => None,
            Some(key) => Some(
                Hmac::<Sha256>::new_from_slice(&key)
                    .map_err(|e| PolicyError::Key(format!("[hash]: {e}")))?,
            ),
        };
        Ok(Redactor {
            rules,
            set,
            set_rules,
            key_rules,
            whole_rules,
            scan_numbers,
            key,
        })
    }

    /// Whether this policy redacts nothing.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The ids of the rules, in the order they apply.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// Redacts `event`'s payload in place and adds what fired to
    /// `event.compliance.redactions` (counts are added to an entry the event already has for
    /// the same rule). Returns what fired on this call.
    pub fn redact(&self, event: &mut AuditEvent) -> Vec<Redaction> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        let mut cx = Cx {
            server: event.target.server_name.as_deref(),
            tool: &event.operation,
            direction: None,
            metadata: false,
            counts: Vec::new(),
        };
        redact_payload(self, &mut event.payload, &mut cx);
        let fired = if self.rules.iter().any(|r| r.scope.names_metadata()) {
            // The rules' scope is the operation as recorded, even where a rule rewrites it.
            let tool = event.operation.clone();
            let counts = std::mem::take(&mut cx.counts);
            let mut cx = Cx {
                server: event.target.server_name.as_deref(),
                tool: &tool,
                direction: None,
                metadata: true,
                counts,
            };
            let mut operation = Some(std::mem::take(&mut event.operation));
            redact_metadata(
                self,
                [
                    ("operation", &mut operation),
                    ("resource_name", &mut event.target.resource_name),
                    ("resource_id", &mut event.target.resource_id),
                ],
                &mut event.data_sources,
                &mut event.compliance_events,
                &mut cx,
            );
            // An operation is required: one a rule drops is recorded as `[REDACTED]`.
            event.operation = operation.unwrap_or_else(|| "[REDACTED]".to_string());
            cx.counts
        } else {
            cx.counts
        };
        let fired: Vec<Redaction> = fired
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| Redaction {
                rule: self.rules[i].id.clone(),
                count: *n,
            })
            .collect();
        for one in &fired {
            let list = &mut event.compliance.redactions;
            match list.iter_mut().find(|r| r.rule == one.rule) {
                Some(existing) => existing.count += one.count,
                None => list.push(one.clone()),
            }
        }
        fired
    }

    /// Applies the scan to one string value.
    fn scan(&self, s: &str, loc: &Loc<'_>, cx: &mut Cx<'_>) -> Option<String> {
        let matches = self.set.matches(s);
        if !matches.matched_any() {
            return None;
        }
        let mut text: Cow<'_, str> = Cow::Borrowed(s);
        for index in matches.iter() {
            let rule_index = self.set_rules[index];
            let rule = &self.rules[rule_index];
            if !cx.admits(rule, loc) {
                continue;
            }
            let Find::Pattern { regex, check } = &rule.find else {
                continue;
            };
            let mut n = 0u64;
            let replaced = regex
                .replace_all(&text, |caps: &regex::Captures<'_>| {
                    let found = &caps[0];
                    if !check.passes(found) {
                        return found.to_string();
                    }
                    n += 1;
                    self.replacement(rule, found)
                })
                .into_owned();
            if n > 0 {
                cx.count(rule_index, n, self.rules.len());
                text = Cow::Owned(replaced);
            }
        }
        match text {
            Cow::Owned(t) => Some(t),
            Cow::Borrowed(_) => None,
        }
    }

    /// What replaces `found` under `rule`'s action.
    fn replacement(&self, rule: &Rule, found: &str) -> String {
        match rule.action {
            Action::Redact | Action::Drop => format!("[REDACTED:{}]", rule.id),
            Action::Mask => mask(found),
            Action::Hash => self.pseudonym(found),
            Action::Truncate(n) => truncate(found, n).to_string(),
        }
    }

    fn pseudonym(&self, value: &str) -> String {
        match &self.key {
            Some(mac) => {
                let mut mac = mac.clone();
                mac.update(value.as_bytes());
                let digest = mac.finalize().into_bytes();
                format!("hmac:{}", hex::encode(&digest[..16]))
            }
            // `build` refuses a hashing rule without a key.
            None => "[REDACTED:no-key]".to_string(),
        }
    }

    /// The whole-value rules (keys, paths) on the value at `loc`: `Some(true)` when it is to be
    /// removed, `Some(false)` when it was replaced, `None` when no rule took it.
    fn whole(&self, value: &mut Value, loc: &Loc<'_>, cx: &mut Cx<'_>) -> Option<bool> {
        if value.is_null() {
            return None;
        }
        let key = match loc.seg {
            Seg::Key(k) => Some(k),
            Seg::Index(_) => None,
        };
        let taken = self
            .key_rules
            .iter()
            .copied()
            .find(|&i| {
                let rule = &self.rules[i];
                matches!((&rule.find, key), (Find::Keys(re), Some(k)) if re.is_match(k))
                    && cx.admits(rule, loc)
            })
            .or_else(|| {
                self.whole_rules.iter().copied().find(|&i| {
                    let rule = &self.rules[i];
                    cx.admits_whole(rule) && rule.scope.paths.iter().any(|p| p.covers(loc, true))
                })
            })?;
        let rule = &self.rules[taken];
        let text = match &mut *value {
            Value::String(s) => std::mem::take(s),
            other => other.to_string(),
        };
        let new = match rule.action {
            // An array element can not be removed without shifting the others' places.
            Action::Drop if matches!(loc.seg, Seg::Index(_)) => self.replacement(rule, &text),
            Action::Drop => {
                cx.count(taken, 1, self.rules.len());
                return Some(true);
            }
            Action::Truncate(n) if text.len() <= n => {
                // Short enough: kept as it was (a string put back; any other value untouched).
                if value.is_string() {
                    *value = Value::String(text);
                }
                return Some(false);
            }
            _ => self.replacement(rule, &text),
        };
        cx.count(taken, 1, self.rules.len());
        *value = Value::String(new);
        Some(false)
    }

    fn walk(&self, value: &mut Value, loc: &Loc<'_>, cx: &mut Cx<'_>) {
        match value {
            Value::String(s) => {
                if let Some(new) = self.scan(s, loc, cx) {
                    *s = new;
                }
            }
            Value::Number(n) if self.scan_numbers => {
                let text = n.to_string();
                if let Some(new) = self.scan(&text, loc, cx) {
                    *value = Value::String(new);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let child = loc.child(Seg::Index(i));
                    match self.whole(item, &child, cx) {
                        Some(_) => {}
                        None => self.walk(item, &child, cx),
                    }
                }
            }
            Value::Object(map) => {
                let mut dropped: Vec<String> = Vec::new();
                for (k, item) in map.iter_mut() {
                    let child = loc.child(Seg::Key(k));
                    match self.whole(item, &child, cx) {
                        Some(true) => dropped.push(k.clone()),
                        Some(false) => {}
                        None => self.walk(item, &child, cx),
                    }
                }
                for k in dropped {
                    map.remove(&k);
                }
            }
            _ => {}
        }
    }
}

/// The event being redacted: what scopes are checked against, and the counts so far.
struct Cx<'e> {
    server: Option<&'e str>,
    tool: &'e str,
    direction: Option<Direction>,
    /// Redacting the hashed metadata: only rules whose paths name it apply.
    metadata: bool,
    counts: Vec<u64>,
}

impl Cx<'_> {
    fn admits(&self, rule: &Rule, loc: &Loc<'_>) -> bool {
        self.admits_whole(rule) && rule.scope.admits_place(loc)
    }

    fn admits_whole(&self, rule: &Rule) -> bool {
        rule.scope.admits_field(self.direction)
            && rule.scope.admits_event(self.server, self.tool)
            && (!self.metadata || rule.scope.names_metadata())
    }

    fn count(&mut self, rule: usize, n: u64, rules: usize) {
        if self.counts.is_empty() {
            self.counts.resize(rules, 0);
        }
        self.counts[rule] += n;
    }
}

fn redact_payload(redactor: &Redactor, payload: &mut Payload, cx: &mut Cx<'_>) {
    let Payload {
        input,
        output,
        error_message,
        old_values,
        new_values,
        changes,
        state_before,
        state_after,
        content_preview,
        context,
        details,
        metadata,
    } = payload;
    let values = [
        ("input", input),
        ("output", output),
        ("old_values", old_values),
        ("new_values", new_values),
        ("changes", changes),
        ("state_before", state_before),
        ("state_after", state_after),
        ("context", context),
        ("details", details),
        ("metadata", metadata),
    ];
    for (name, field) in values {
        if let Some(value) = field.as_mut()
            && redact_field(redactor, name, value, cx)
        {
            *field = None;
        }
    }
    for (name, field) in [
        ("error_message", error_message),
        ("content_preview", content_preview),
    ] {
        if let Some(text) = field.take() {
            let mut value = Value::String(text);
            if !redact_field(redactor, name, &mut value, cx) {
                *field = Some(match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                });
            }
        }
    }
}

/// Redacts the metadata fields that rules name by path (see [`METADATA_FIELDS`]). A required
/// text (a data source's `uri`) that a rule drops is replaced by `[REDACTED]` instead.
fn redact_metadata(
    redactor: &Redactor,
    texts: [(&str, &mut Option<String>); 3],
    sources: &mut [crate::event::DataSource],
    findings: &mut [crate::event::ComplianceEvent],
    cx: &mut Cx<'_>,
) {
    fn text(redactor: &Redactor, loc: &Loc<'_>, field: &mut String, cx: &mut Cx<'_>) -> bool {
        let mut value = Value::String(std::mem::take(field));
        let dropped = match redactor.whole(&mut value, loc, cx) {
            Some(dropped) => dropped,
            None => {
                redactor.walk(&mut value, loc, cx);
                false
            }
        };
        *field = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        dropped
    }
    fn value(redactor: &Redactor, loc: &Loc<'_>, field: &mut Option<Value>, cx: &mut Cx<'_>) {
        if let Some(v) = field.as_mut() {
            let dropped = match redactor.whole(v, loc, cx) {
                Some(dropped) => dropped,
                None => {
                    redactor.walk(v, loc, cx);
                    false
                }
            };
            if dropped {
                *field = None;
            }
        }
    }
    cx.direction = None;
    for (name, field) in texts {
        let loc = Loc {
            parent: None,
            seg: Seg::Key(name),
            depth: 1,
        };
        if let Some(t) = field.as_mut()
            && text(redactor, &loc, t, cx)
        {
            *field = None;
        }
    }
    let root = Loc {
        parent: None,
        seg: Seg::Key("data_sources"),
        depth: 1,
    };
    for (i, source) in sources.iter_mut().enumerate() {
        let at = root.child(Seg::Index(i));
        if text(redactor, &at.child(Seg::Key("uri")), &mut source.uri, cx) {
            source.uri = "[REDACTED]".into();
        }
        if let Some(identifier) = source.identifier.as_mut()
            && text(redactor, &at.child(Seg::Key("identifier")), identifier, cx)
        {
            source.identifier = None;
        }
        value(
            redactor,
            &at.child(Seg::Key("metadata")),
            &mut source.metadata,
            cx,
        );
    }
    let root = Loc {
        parent: None,
        seg: Seg::Key("compliance_events"),
        depth: 1,
    };
    for (i, finding) in findings.iter_mut().enumerate() {
        let at = root.child(Seg::Index(i));
        value(
            redactor,
            &at.child(Seg::Key("details")),
            &mut finding.details,
            cx,
        );
    }
}

/// Redacts one payload field; true when a rule drops it whole.
fn redact_field(redactor: &Redactor, name: &str, value: &mut Value, cx: &mut Cx<'_>) -> bool {
    cx.direction = Direction::of_field(name);
    let loc = Loc {
        parent: None,
        seg: Seg::Key(name),
        depth: 1,
    };
    match redactor.whole(value, &loc, cx) {
        Some(dropped) => dropped,
        None => {
            redactor.walk(value, &loc, cx);
            false
        }
    }
}

/// Letters and digits become `*` except the last few (4 of 12 or more, 2 of 8 or more, none
/// of fewer); everything else (separators, spaces) is kept, so the shape shows.
fn mask(text: &str) -> String {
    let alnum = text.chars().filter(|c| c.is_alphanumeric()).count();
    let keep = if alnum >= 12 {
        4
    } else if alnum >= 8 {
        2
    } else {
        0
    };
    let mut seen = 0;
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                seen += 1;
                if seen > alnum - keep { c } else { '*' }
            } else {
                c
            }
        })
        .collect()
}

/// The first `n` bytes of `text`, cut back to a character boundary.
fn truncate(text: &str, n: usize) -> &str {
    if text.len() <= n {
        return text;
    }
    let mut end = n;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn compile_rule(text: &str, form: &RuleForm) -> Result<Rule, PolicyError> {
    let id = form.id.get_ref().clone();
    let id_line = line_of(text, form.id.span().start);
    let fail = |line: usize, message: String| PolicyError::Rule {
        line,
        rule: id.clone(),
        message,
    };
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(fail(
            id_line,
            "an id is letters, digits, `-`, `_` and `.`".into(),
        ));
    }
    let given = [
        form.detector.is_some(),
        form.pattern.is_some(),
        form.keys.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given > 1 {
        return Err(fail(
            id_line,
            "give one of `detector`, `pattern` or `keys`".into(),
        ));
    }
    let check = match &form.check {
        None => Check::None,
        Some(c) => Check::parse(c.get_ref()).ok_or_else(|| {
            fail(
                line_of(text, c.span().start),
                format!(
                    "unknown check `{}` (valid: {})",
                    c.get_ref(),
                    CHECKS
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?,
    };
    let find = if let Some(detector) = &form.detector {
        let builtin = BUILTINS
            .iter()
            .find(|b| b.id == detector.get_ref())
            .ok_or_else(|| {
                let names: Vec<&str> = BUILTINS.iter().map(|b| b.id).collect();
                fail(
                    line_of(text, detector.span().start),
                    format!(
                        "unknown detector `{}` (valid: {})",
                        detector.get_ref(),
                        names.join(", ")
                    ),
                )
            })?;
        builtin_rule(builtin).find
    } else if let Some(pattern) = &form.pattern {
        let regex = Regex::new(pattern.get_ref()).map_err(|e| {
            fail(
                line_of(text, pattern.span().start),
                format!("invalid pattern: {}", one_line(&e.to_string())),
            )
        })?;
        Find::Pattern { regex, check }
    } else if let Some(keys) = &form.keys {
        let regex = Regex::new(keys.get_ref()).map_err(|e| {
            fail(
                line_of(text, keys.span().start),
                format!("invalid keys pattern: {}", one_line(&e.to_string())),
            )
        })?;
        Find::Keys(regex)
    } else if !form.paths.is_empty() {
        Find::Whole
    } else {
        return Err(fail(
            id_line,
            "give `detector`, `pattern`, `keys`, or `paths` alone (the whole value at each path)"
                .into(),
        ));
    };
    let action = match &form.action {
        None => Action::Redact,
        Some(a) => {
            let line = line_of(text, a.span().start);
            match a.get_ref().as_str() {
                "redact" => Action::Redact,
                "drop" => Action::Drop,
                "mask" => Action::Mask,
                "hash" => Action::Hash,
                "truncate" => Action::Truncate(
                    form.bytes
                        .ok_or_else(|| fail(line, "`truncate` needs `bytes = N`".into()))?,
                ),
                other => {
                    return Err(fail(
                        line,
                        format!("unknown action `{other}` (valid: {})", ACTIONS.join(", ")),
                    ));
                }
            }
        }
    };
    let direction = match &form.direction {
        None => Direction::Any,
        Some(d) => match d.get_ref().as_str() {
            "any" => Direction::Any,
            "arguments" => Direction::Arguments,
            "result" => Direction::Result,
            other => {
                return Err(fail(
                    line_of(text, d.span().start),
                    format!(
                        "unknown direction `{other}` (valid: {})",
                        DIRECTIONS.join(", ")
                    ),
                ));
            }
        },
    };
    let mut paths = Vec::new();
    for p in &form.paths {
        paths.push(Path::parse(p.get_ref()).map_err(|e| fail(line_of(text, p.span().start), e))?);
    }
    Ok(Rule {
        id,
        find,
        action,
        scope: Scope {
            servers: form.servers.clone(),
            tools: form.tools.clone(),
            direction,
            paths,
        },
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Action as EventAction, EventKind};

    const CARD: &str = "4111 1111 1111 1111";
    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn tool_call(server: &str, tool: &str, input: Value) -> AuditEvent {
        let mut event: AuditEvent = serde_json::from_value(json!({
            "kind": "tool_execution",
            "action": "EXECUTE",
            "operation": tool,
            "target": {"server_name": server},
        }))
        .expect("a valid event");
        event.payload.input = Some(input);
        assert_eq!(event.kind, EventKind::ToolExecution);
        assert_eq!(event.action, EventAction::Execute);
        event
    }

    fn policy(text: &str) -> Redactor {
        Redactor::from_toml(text, |_| Err("no files here".into())).expect("a valid policy")
    }

    fn policy_error(text: &str) -> String {
        Redactor::from_toml(text, |_| Err("no files here".into()))
            .expect_err("an invalid policy")
            .to_string()
    }

    #[test]
    fn a_rule_on_the_operation_pseudonymises_a_resource_uri_scoped_by_its_recorded_value() {
        let r = policy(
            r#"
            [hash]
            key = "a test key of at least sixteen bytes"

            [[rule]]
            id = "home-paths"
            paths = ["$.operation"]
            tools = ["file:///home/alice-smith/notes.txt"]
            action = "hash"
            "#,
        );
        let read = |uri: &str| {
            let mut event = AuditEvent::resource_access(uri, crate::Action::Read)
                .build()
                .unwrap();
            let fired = r.redact(&mut event);
            (event.operation, fired.len())
        };
        let (first, fired) = read("file:///home/alice-smith/notes.txt");
        assert!(first.starts_with("hmac:"), "{first}");
        assert_eq!(fired, 1);
        // Equal values, equal pseudonyms: a person's reads still join.
        assert_eq!(read("file:///home/alice-smith/notes.txt").0, first);
        // Out of the rule's scope: recorded as given.
        assert_eq!(
            read("file:///srv/shared.txt"),
            ("file:///srv/shared.txt".into(), 0)
        );
    }

    #[test]
    fn rules_that_name_metadata_fields_by_path_redact_them_and_no_others_do() {
        let r = policy(
            r#"
            [hash]
            key = "a test key of at least sixteen bytes"

            [[rule]]
            id = "names"
            paths = ["$.resource_name", "$.data_sources[*].uri"]
            action = "hash"

            [[rule]]
            id = "emails-in-details"
            detector = "email"
            paths = ["$.compliance_events[*].details", "$.data_sources[*].metadata"]
            "#,
        );
        let mut event = AuditEvent::resource_access("crm://contacts/42", crate::Action::Read)
            .data_source(
                crate::DataSource::input("file:///home/alice-smith/notes.txt")
                    .metadata(json!({"owner": "alice@example.com"})),
            )
            .compliance_event(crate::ComplianceEvent {
                framework: "GDPR".into(),
                event_type: "data_access".into(),
                risk_level: crate::RiskLevel::Low,
                details: Some(json!({"who": "alice@example.com"})),
                mitigation: Vec::new(),
            })
            .build()
            .unwrap();
        event.target.resource_name = Some("Alice Smith".into());
        r.redact(&mut event);
        let name = event.target.resource_name.clone().unwrap();
        assert!(name.starts_with("hmac:"), "{name}");
        assert!(event.data_sources[0].uri.starts_with("hmac:"));
        let text = serde_json::to_string(&event).unwrap();
        assert!(!text.contains("alice"), "{text}");
        assert!(!text.contains("Alice"), "{text}");
        assert_eq!(
            fired(&event),
            [
                ("names".to_string(), 2),
                ("emails-in-details".to_string(), 2)
            ]
        );
        // The built-in secrets, unscoped, leave the metadata as it is.
        let mut plain = AuditEvent::resource_access("crm://contacts/42", crate::Action::Read)
            .build()
            .unwrap();
        plain.target.resource_name = Some("password=hunter2".into());
        Redactor::secrets().redact(&mut plain);
        assert_eq!(
            plain.target.resource_name.as_deref(),
            Some("password=hunter2")
        );
        assert!(
            policy_error("[[rule]]\nid = \"x\"\npaths = [\"$.session_id\"]\n")
                .contains("metadata field")
        );
    }

    fn fired(event: &AuditEvent) -> Vec<(String, u64)> {
        event
            .compliance
            .redactions
            .iter()
            .map(|r| (r.rule.clone(), r.count))
            .collect()
    }

    fn redacted_input(redactor: &Redactor, input: Value) -> (Value, Vec<(String, u64)>) {
        let mut event = tool_call("s", "t", input);
        redactor.redact(&mut event);
        (
            event.payload.input.clone().unwrap_or(Value::Null),
            fired(&event),
        )
    }

    #[test]
    fn the_default_policy_redacts_every_builtin_secret_shape() {
        let secrets = [
            ("bearer", "Bearer abcdef0123456789.xyz"),
            (
                "jwt",
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz",
            ),
            (
                "private-key",
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----",
            ),
            ("aws-access-key", "AKIAIOSFODNN7EXAMPLE"),
            ("github-token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            ("github-token", "github_pat_11ABCDEFG0123456789_abcdefghijk"),
            ("gitlab-token", "glpat-abcdefghij0123456789"),
            ("slack-token", "xoxb-1234567890-abcdefghij"),
            ("llm-api-key", "sk-proj-abcdefghijklmnopqrstuvwx"),
            ("llm-api-key", "sk-ant-api03-abcdefghijklmnopqrstuvwx"),
        ];
        let redactor = Redactor::secrets();
        for (rule, secret) in secrets {
            let (out, fired) =
                redacted_input(&redactor, json!({"note": format!("use {secret} now")}));
            let text = out["note"].as_str().expect("still a string");
            assert_eq!(
                text,
                format!("use [REDACTED:{rule}] now"),
                "{rule}: {secret}"
            );
            assert!(!text.contains(&secret[secret.len() - 6..]), "{rule} leaked");
            assert_eq!(fired, vec![(rule.to_string(), 1)], "{rule}");
        }
    }

    #[test]
    fn values_of_secret_named_keys_are_redacted_whatever_their_type() {
        let (out, fired) = redacted_input(
            &Redactor::secrets(),
            json!({
                "password": "hunter2", "db_password": 1234, "apiKey": {"a": 1},
                "Authorization": "Basic dXNlcjpwYXNz", "client-secret": "x",
                "max_tokens": 100, "tokenizer": "bpe", "token": null, "pwd": "/srv",
            }),
        );
        for key in [
            "password",
            "db_password",
            "apiKey",
            "Authorization",
            "client-secret",
        ] {
            assert_eq!(out[key], json!("[REDACTED:secret-keys]"), "{key}");
        }
        assert_eq!(out["max_tokens"], json!(100));
        assert_eq!(out["tokenizer"], json!("bpe"));
        assert_eq!(out["pwd"], json!("/srv"), "a shell's working directory");
        assert_eq!(out["token"], Value::Null);
        assert_eq!(fired, vec![("secret-keys".to_string(), 5)]);
    }

    #[test]
    fn ordinary_text_is_left_alone_and_records_nothing() {
        let input = json!({"query": "select * from t where a = 'sk-short'", "n": [1, 2, 3],
            "skill": "task-ask", "date": "2026-12-07 17:12:33"});
        let (out, fired) = redacted_input(&Redactor::secrets(), input.clone());
        assert_eq!(out, input);
        assert!(fired.is_empty());
    }

    #[test]
    fn every_payload_field_is_covered() {
        let redactor = Redactor::secrets();
        let mut event = tool_call("s", "t", json!("x"));
        let token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
        event.payload = Payload {
            input: Some(json!([token])),
            output: Some(json!({"content": [{"type": "text", "text": token}]})),
            error_message: Some(format!("bad {token}")),
            old_values: Some(json!(token)),
            new_values: Some(json!(token)),
            changes: Some(json!(token)),
            state_before: Some(json!(token)),
            state_after: Some(json!(token)),
            content_preview: Some(token.to_string()),
            context: Some(json!(token)),
            details: Some(json!(token)),
            metadata: Some(json!(token)),
        };
        redactor.redact(&mut event);
        let text = serde_json::to_string(&event).expect("serializes");
        assert!(!text.contains(token));
        assert_eq!(fired(&event), vec![("github-token".to_string(), 12)]);
    }

    #[test]
    fn cards_need_a_valid_luhn_checksum() {
        let redactor = policy("[[rule]]\nid = \"card\"\ndetector = \"card\"\n");
        let (out, fired) = redacted_input(
            &redactor,
            json!({"a": format!("pay {CARD}"), "b": "4111 1111 1111 1112",
                   "c": 4111111111111111u64, "d": "order 1234567890123"}),
        );
        assert_eq!(out["a"], json!("pay [REDACTED:card]"));
        assert_eq!(out["b"], json!("4111 1111 1111 1112"), "a failed checksum");
        assert_eq!(
            out["c"],
            json!("[REDACTED:card]"),
            "a number is searched too"
        );
        assert_eq!(out["d"], json!("order 1234567890123"));
        assert_eq!(fired, vec![("card".to_string(), 2)]);
    }

    #[test]
    fn a_pattern_of_a_policy_file_may_require_a_checksum() {
        let redactor = policy(
            "secrets = false\n[[rule]]\nid = \"acct\"\npattern = \"ACCT-[0-9]{16}\"\ncheck = \"luhn\"\n",
        );
        let (out, fired) = redacted_input(
            &redactor,
            json!(["ACCT-4111111111111111", "ACCT-4111111111111112"]),
        );
        assert_eq!(out, json!(["[REDACTED:acct]", "ACCT-4111111111111112"]));
        assert_eq!(fired, vec![("acct".to_string(), 1)]);
        let error = policy_error("[[rule]]\nid = \"x\"\npattern = \"a\"\ncheck = \"crc\"\n");
        assert!(
            error.contains("line 4: rule `x`: unknown check `crc`"),
            "{error}"
        );
    }

    #[test]
    fn national_identifiers_are_redacted_only_when_their_check_passes() {
        // (detector, a valid identifier in text, the same with its check character changed)
        let cases = [
            ("uk-nino", "NI AB 12 34 56 C ok", "NI GB 12 34 56 C ok"),
            ("de-steuer-id", "IdNr 86095742719.", "IdNr 86095742718."),
            (
                "fr-nir",
                "NIR 1 84 03 76 451 089 96",
                "NIR 1 84 03 76 451 089 97",
            ),
            ("fr-nir", "NIR 185022A12345682", "NIR 185022A12345683"),
            ("es-dni", "DNI 12345678Z", "DNI 12345678A"),
            ("es-dni", "NIE X1234567L", "NIE X1234567M"),
            (
                "it-codice-fiscale",
                "CF RSSMRA85T10A562S",
                "CF RSSMRA85T10A562T",
            ),
            ("nl-bsn", "BSN 123456782", "BSN 123456789"),
            ("in-aadhaar", "UID 4991 1852 7618", "UID 4991 1852 7619"),
            ("ca-sin", "SIN 046-454-286", "SIN 046-454-287"),
            ("pl-pesel", "PESEL 44051401359", "PESEL 44051401358"),
            ("br-cpf", "CPF 529.982.247-25", "CPF 529.982.247-24"),
        ];
        for (detector, valid, invalid) in cases {
            let redactor = policy(&format!(
                "[[rule]]\nid = \"{detector}\"\ndetector = \"{detector}\"\n"
            ));
            let (out, fired) = redacted_input(&redactor, json!([valid, invalid]));
            let text = out[0].as_str().expect("a string");
            assert!(
                text.contains(&format!("[REDACTED:{detector}]")),
                "{detector}: {valid} -> {text}"
            );
            assert_eq!(
                out[1],
                json!(invalid),
                "{detector}: the checksum-invalid sample"
            );
            assert_eq!(fired, vec![(detector.to_string(), 1)], "{detector}");
        }
    }

    #[test]
    fn national_identifier_detectors_are_off_by_default() {
        let input = json!(["86095742719", "RSSMRA85T10A562S", "AB123456C", "12345678Z"]);
        let (out, fired) = redacted_input(&Redactor::secrets(), input.clone());
        assert_eq!(out, input);
        assert!(fired.is_empty());
    }

    #[test]
    fn a_pattern_may_use_a_national_identifiers_check() {
        let redactor = policy(
            "[[rule]]\nid = \"steuer\"\npattern = \"[0-9]{11}\"\ncheck = \"de-steuer-id\"\n",
        );
        let (out, fired) = redacted_input(&redactor, json!(["St 86095742719", "St 86095742718"]));
        assert_eq!(out, json!(["St [REDACTED:steuer]", "St 86095742718"]));
        assert_eq!(fired, vec![("steuer".to_string(), 1)]);
    }

    #[test]
    fn us_social_security_numbers_need_a_valid_area_group_and_serial() {
        let redactor = policy("[[rule]]\nid = \"ssn\"\ndetector = \"us-ssn\"\n");
        let (out, fired) = redacted_input(
            &redactor,
            json!([
                "SSN 123-45-6789",
                "078 05 1120",
                "000-12-3456",
                "666-12-3456",
                "900-12-3456",
                "123-00-4567",
                "123-45-0000",
                "2026-12-07"
            ]),
        );
        assert_eq!(
            out,
            json!([
                "SSN [REDACTED:ssn]",
                "[REDACTED:ssn]",
                "000-12-3456",
                "666-12-3456",
                "900-12-3456",
                "123-00-4567",
                "123-45-0000",
                "2026-12-07"
            ])
        );
        assert_eq!(fired, vec![("ssn".to_string(), 2)]);
    }

    #[test]
    fn ibans_need_a_valid_mod_97_checksum() {
        let redactor = policy("[[rule]]\nid = \"iban\"\ndetector = \"iban\"\n");
        let (out, fired) = redacted_input(
            &redactor,
            json!([
                "DE89 3704 0044 0532 0130 00",
                "GB82WEST12345698765432",
                "DE89 3704 0044 0532 0130 01"
            ]),
        );
        assert_eq!(
            out,
            json!([
                "[REDACTED:iban]",
                "[REDACTED:iban]",
                "DE89 3704 0044 0532 0130 01"
            ])
        );
        assert_eq!(fired, vec![("iban".to_string(), 2)]);
    }

    #[test]
    fn emails_and_phone_numbers_are_found_when_enabled_only() {
        let input = json!("write to alice@example.com or call +44 20 7946 0958 / (415) 555-2671");
        let (out, _) = redacted_input(&Redactor::secrets(), input.clone());
        assert_eq!(out, input, "personal-data detectors are opt-in");
        let redactor = policy(
            "[[rule]]\nid = \"email\"\ndetector = \"email\"\n[[rule]]\nid = \"phone\"\ndetector = \"phone\"\n",
        );
        let (out, fired) = redacted_input(&redactor, input);
        assert_eq!(
            out,
            json!("write to [REDACTED:email] or call [REDACTED:phone] / [REDACTED:phone]")
        );
        assert_eq!(
            fired,
            vec![("email".to_string(), 1), ("phone".to_string(), 2)]
        );
    }

    #[test]
    fn mask_keeps_the_shape_and_the_last_four() {
        let redactor = policy("[[rule]]\nid = \"card\"\ndetector = \"card\"\naction = \"mask\"\n");
        let (out, _) = redacted_input(&redactor, json!(CARD));
        assert_eq!(out, json!("**** **** **** 1111"));
        assert_eq!(mask("abc"), "***");
        assert_eq!(mask("abcdefgh"), "******gh");
    }

    #[test]
    fn hash_gives_equal_pseudonyms_for_equal_values_and_depends_on_the_key() {
        let text = |key: &str| {
            format!(
                "[hash]\nkey = \"{key}\"\n[[rule]]\nid = \"card\"\ndetector = \"card\"\naction = \"hash\"\n"
            )
        };
        let one = policy(&text(KEY));
        let (a, _) = redacted_input(&one, json!([CARD, CARD, "5500 0000 0000 0004"]));
        let pseudonym = a[0].as_str().expect("a string");
        assert!(pseudonym.starts_with("hmac:") && pseudonym.len() == 5 + 32);
        assert_eq!(a[0], a[1]);
        assert_ne!(a[0], a[2]);
        let (again, _) = redacted_input(&one, json!(CARD));
        assert_eq!(
            again, a[0],
            "the same key, the same pseudonym on another event"
        );
        let other = policy(&text("another key of at least sixteen bytes"));
        let (b, _) = redacted_input(&other, json!(CARD));
        assert_ne!(b, a[0]);
    }

    #[test]
    fn hash_reads_its_key_from_the_key_file() {
        let text = "[hash]\nkey_file = \"audit.hmac\"\n[[rule]]\nid = \"e\"\ndetector = \"email\"\naction = \"hash\"\n";
        let redactor = Redactor::from_toml(text, |path| {
            assert_eq!(path, "audit.hmac");
            Ok(format!("{KEY}\n").into_bytes())
        })
        .expect("valid");
        let inline =
            policy(&text.replace("key_file = \"audit.hmac\"", &format!("key = \"{KEY}\"")));
        let (a, _) = redacted_input(&redactor, json!("a@example.com"));
        let (b, _) = redacted_input(&inline, json!("a@example.com"));
        assert_eq!(a, b, "the file's trailing newline is not part of the key");
    }

    #[test]
    fn drop_removes_the_member_and_truncate_keeps_n_bytes() {
        let redactor = policy(
            "[[rule]]\nid = \"cookies\"\nkeys = \"(?i)^x-session$\"\naction = \"drop\"\n\
             [[rule]]\nid = \"short-output\"\npaths = [\"$.output.text\"]\naction = \"truncate\"\nbytes = 5\n",
        );
        let mut event = tool_call("s", "t", json!({"x-session": "abc", "keep": 1}));
        event.payload.output = Some(json!({"text": "héllo world", "other": "héllo world"}));
        redactor.redact(&mut event);
        assert_eq!(event.payload.input, Some(json!({"keep": 1})));
        assert_eq!(
            event.payload.output,
            Some(json!({"text": "héll", "other": "héllo world"})),
            "cut back to a character boundary, only at the path"
        );
        let mut rules = fired(&event);
        rules.sort();
        assert_eq!(
            rules,
            vec![("cookies".to_string(), 1), ("short-output".to_string(), 1)]
        );
    }

    #[test]
    fn truncate_leaves_a_value_shorter_than_its_limit_as_it_was() {
        let redactor = policy(
            "[[rule]]\nid = \"cut\"\npaths = [\"$.input.*\"]\naction = \"truncate\"\nbytes = 64\n",
        );
        let input = json!({"n": 12, "o": {"a": [1, 2]}, "s": "short"});
        let (out, fired) = redacted_input(&redactor, input.clone());
        assert_eq!(out, input);
        assert!(fired.is_empty());
    }

    #[test]
    fn rules_apply_only_to_their_server_tool_direction_and_path() {
        let redactor = policy(
            "secrets = false\n[[rule]]\nid = \"n\"\npattern = \"needle\"\nservers = [\"files\"]\n\
             tools = [\"read\"]\ndirection = \"result\"\npaths = [\"$.output.items[*].body\"]\n",
        );
        let hit = |server: &str, tool: &str, output: Value, input: Value| {
            let mut event = tool_call(server, tool, input);
            event.payload.output = Some(output);
            redactor.redact(&mut event);
            (event.payload.output.clone(), event.payload.input.clone())
        };
        let output = json!({"items": [{"body": "a needle", "title": "needle"}]});
        let (out, input) = hit("files", "read", output.clone(), json!("needle"));
        assert_eq!(
            out,
            Some(json!({"items": [{"body": "a [REDACTED:n]", "title": "needle"}]}))
        );
        assert_eq!(input, Some(json!("needle")), "arguments are not the result");
        assert_eq!(
            hit("other", "read", output.clone(), json!(1)).0,
            Some(output.clone())
        );
        assert_eq!(
            hit("files", "write", output.clone(), json!(1)).0,
            Some(output)
        );
    }

    #[test]
    fn a_file_rule_with_a_builtin_id_replaces_it_and_secrets_false_turns_them_off() {
        let redactor = policy(&format!(
            "[hash]\nkey = \"{KEY}\"\n[[rule]]\nid = \"bearer\"\ndetector = \"bearer\"\naction = \"hash\"\n"
        ));
        let (out, _) = redacted_input(&redactor, json!("Bearer abcdefghijkl"));
        assert!(out.as_str().is_some_and(|s| s.starts_with("hmac:")));
        assert_eq!(redactor.rule_ids().filter(|id| *id == "bearer").count(), 1);
        let off = policy("secrets = false\n");
        assert!(off.is_empty());
        let (out, _) = redacted_input(&off, json!({"password": "hunter2"}));
        assert_eq!(out, json!({"password": "hunter2"}));
    }

    #[test]
    fn redactions_already_on_the_event_are_added_to() {
        let redactor = Redactor::secrets();
        let mut event = tool_call("s", "t", json!({"password": "a"}));
        event.compliance.redactions = vec![Redaction {
            rule: "secret-keys".into(),
            count: 2,
        }];
        redactor.redact(&mut event);
        assert_eq!(fired(&event), vec![("secret-keys".to_string(), 3)]);
    }

    #[test]
    fn an_event_with_nothing_redacted_seals_as_before() {
        let mut event = tool_call("s", "t", json!({"q": "plain"}));
        let before = crate::seal(event.clone()).expect("seals").meta_json;
        Redactor::secrets().redact(&mut event);
        let after = crate::seal(event).expect("seals").meta_json;
        assert_eq!(before, after);
        assert!(!String::from_utf8_lossy(&after).contains("redactions"));
    }

    #[test]
    fn malformed_toml_is_reported_with_its_line() {
        let error = policy_error("secrets = true\n[[rule]\nid = \"x\"\n");
        assert!(error.starts_with("line 2: "), "{error}");
        let error = policy_error("secrets = true\n\n[[rule]]\nid = \"x\"\npatern = \"a\"\n");
        assert!(
            error.starts_with("line 5: ") && error.contains("patern"),
            "{error}"
        );
    }

    #[test]
    fn an_invalid_regex_names_the_rule_and_its_line() {
        let error = policy_error("[[rule]]\nid = \"broken\"\npattern = \"a(b\"\n");
        assert!(
            error.starts_with("line 3: rule `broken`: invalid pattern"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_action_lists_the_valid_ones() {
        let error =
            policy_error("[[rule]]\nid = \"x\"\ndetector = \"email\"\naction = \"shred\"\n");
        assert_eq!(
            error,
            "line 4: rule `x`: unknown action `shred` (valid: redact, drop, mask, hash, truncate)"
        );
    }

    #[test]
    fn other_bad_rules_are_refused_with_a_reason() {
        for (text, expected) in [
            (
                "[[rule]]\nid = \"x\"\ndetector = \"ssn\"\n",
                "unknown detector `ssn`",
            ),
            (
                "[[rule]]\nid = \"x\"\n",
                "give `detector`, `pattern`, `keys`",
            ),
            (
                "[[rule]]\nid = \"x\"\npaths = [\"$.inptu\"]\n",
                "not a payload or metadata field",
            ),
            (
                "[[rule]]\nid = \"x\"\npaths = [\"input\"]\n",
                "must start with `$`",
            ),
            (
                "[[rule]]\nid = \"x\"\npattern = \"a\"\ndirection = \"up\"\n",
                "unknown direction",
            ),
            (
                "[[rule]]\nid = \"x\"\npattern = \"a\"\naction = \"truncate\"\n",
                "needs `bytes",
            ),
            (
                "[[rule]]\nid = \"x\"\npattern = \"a\"\naction = \"hash\"\n",
                "has no key",
            ),
            ("[hash]\nkey = \"short\"\n", "at least 16"),
            (
                "[[rule]]\nid = \"x\"\npattern = \"a\"\n[[rule]]\nid = \"x\"\npattern = \"b\"\n",
                "second rule",
            ),
        ] {
            let error = policy_error(text);
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn paths_parse_the_documented_grammar() {
        let path = Path::parse("$.output.content[*].text").expect("valid");
        assert_eq!(
            path.0,
            vec![
                PathSeg::Key("output".into()),
                PathSeg::Key("content".into()),
                PathSeg::AnyIndex,
                PathSeg::Key("text".into())
            ]
        );
        let path = Path::parse("$.*[\"a b\"][2].*").expect("valid");
        assert_eq!(
            path.0,
            vec![
                PathSeg::AnyKey,
                PathSeg::Key("a b".into()),
                PathSeg::Index(2),
                PathSeg::AnyKey
            ]
        );
        assert!(Path::parse("$.input[x]").is_err());
        assert!(Path::parse("$").is_err());
    }
}
