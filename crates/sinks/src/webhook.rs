//! The webhook destination: each batch POSTed as one JSON document, signed.
//!
//! The body is `{"sink": NAME, "records": [RECORD, ...]}` (each record as [`Record`]: its
//! `key` `LOG:SEQ`, log id, seq, the event, its leaf hash and payload commitment). The header
//!
//! ```text
//! X-Mcp-Audit-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//! ```
//!
//! signs the body with the shared secret, and binds the time to it so that a receiver can
//! refuse a replayed request: it recomputes the HMAC over the exact bytes it received,
//! compares in constant time, and refuses a `t` further than its window (five minutes, say)
//! from its own clock. Retries are sent with a fresh `t`; the records' keys are what a receiver
//! deduplicates on (the same record may come twice when an acknowledgement was lost).
//!
//! The answer decides what the runner does:
//! - 2xx: the whole batch is acknowledged;
//! - 429, 5xx, a timeout, a connection that fails: [`Failure::Unavailable`], the batch is sent
//!   again later;
//! - any other 4xx: [`Failure::Refused`]. The receiver may say which record it refuses with a
//!   JSON body `{"accepted": N}` (the first N records were taken, record N is refused);
//!   otherwise the first record is taken as the refused one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hmac::{Hmac, Mac};
use mcp_audit_store::StoredEvent;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::record::Record;
use crate::{Destination, Failure};

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "X-Mcp-Audit-Signature";

/// A `[[sink]]` of `type = "webhook"`: its own fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where batches are POSTed (`http://` or `https://`).
    pub url: String,
    /// The shared secret, inline (prefer `secret_file` or `secret_env`).
    #[serde(default)]
    pub secret: Option<String>,
    /// A file holding the shared secret (surrounding whitespace ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// An environment variable holding the shared secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// How long one POST may take before it counts as unavailable (default 10,000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Extra headers sent with every POST (an API key a gateway asks for, say).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// Why a webhook could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// Not one of `secret`, `secret_file`, `secret_env` was given, or more than one.
    #[error("a webhook needs exactly one of `secret`, `secret_file`, `secret_env`")]
    Secret,
    /// The secret file could not be read, or the variable is unset.
    #[error("cannot read the webhook secret from {0}")]
    SecretSource(String),
    /// The secret is empty.
    #[error("the webhook secret is empty")]
    EmptySecret,
    /// The URL is not an http(s) URL.
    #[error("webhook url `{0}` is not an http:// or https:// URL")]
    Url(String),
    /// A header name or value that HTTP does not allow.
    #[error("webhook header `{0}` is not a valid HTTP header")]
    Header(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// POSTs signed JSON batches to one URL.
pub struct Webhook {
    sink: String,
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Vec<u8>,
    headers: reqwest::header::HeaderMap,
}

#[derive(Serialize)]
struct Body<'a> {
    sink: &'a str,
    records: Vec<Record<'a>>,
}

/// What a receiver may answer with a refusal.
#[derive(Deserialize)]
struct Refusal {
    accepted: usize,
}

impl Webhook {
    /// A webhook of the sink named `sink` (sent in each body, so that one receiver can tell
    /// several sinks apart).
    pub fn new(sink: &str, config: &WebhookConfig) -> Result<Webhook, WebhookError> {
        let secret = read_secret(config)?;
        let url = reqwest::Url::parse(&config.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| WebhookError::Url(config.url.clone()))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &config.headers {
            let bad = || WebhookError::Header(name.clone());
            headers.insert(
                reqwest::header::HeaderName::try_from(name.as_str()).map_err(|_| bad())?,
                reqwest::header::HeaderValue::try_from(value.as_str()).map_err(|_| bad())?,
            );
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms.max(1)))
            .build()
            .map_err(|e| WebhookError::Client(e.to_string()))?;
        Ok(Webhook {
            sink: sink.to_string(),
            client,
            url,
            secret,
            headers,
        })
    }
}

fn read_secret(config: &WebhookConfig) -> Result<Vec<u8>, WebhookError> {
    let secret = match (&config.secret, &config.secret_file, &config.secret_env) {
        (Some(s), None, None) => s.clone(),
        (None, Some(path), None) => std::fs::read_to_string(path)
            .map_err(|e| WebhookError::SecretSource(format!("{}: {e}", path.display())))?
            .trim()
            .to_string(),
        (None, None, Some(var)) => std::env::var(var)
            .map_err(|_| WebhookError::SecretSource(format!("${var} (not set)")))?,
        _ => return Err(WebhookError::Secret),
    };
    if secret.is_empty() {
        return Err(WebhookError::EmptySecret);
    }
    Ok(secret.into_bytes())
}

/// The signature header's value for `body` sent at `t` (Unix seconds).
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    // HMAC-SHA256(secret, "<t>.<body>")
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl Destination for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    async fn deliver(&mut self, batch: &[StoredEvent]) -> Result<(), Failure> {
        let body = serde_json::to_vec(&Body {
            sink: &self.sink,
            records: batch.iter().map(Record::of).collect(),
        })
        .map_err(|e| Failure::Refused {
            accepted: 0,
            reason: format!("cannot encode the batch: {e}"),
        })?;
        let t = jiff::Timestamp::now().as_second();
        let response = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature(&self.secret, t, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Unavailable(describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        judge(status, &text, batch.len())
    }
}

/// What an answer other than 2xx means.
fn judge(status: StatusCode, text: &str, len: usize) -> Result<(), Failure> {
    let said = text.chars().take(200).collect::<String>();
    let reason = if said.trim().is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", said.trim())
    };
    if status == StatusCode::TOO_MANY_REQUESTS || !status.is_client_error() {
        return Err(Failure::Unavailable(reason));
    }
    let accepted = serde_json::from_str::<Refusal>(text)
        .map(|r| r.accepted)
        .ok()
        .filter(|&n| n < len)
        .unwrap_or(0);
    Err(Failure::Refused { accepted, reason })
}

/// A transport error in one line, with its cause (reqwest's own message says only "error
/// sending request").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_timeout() {
        text.push_str(" (timed out)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_time_dot_body() {
        // Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac k
        assert_eq!(
            signature(b"k", 1_700_000_000, b"{}"),
            "t=1700000000,v1=c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146"
        );
    }

    #[test]
    fn answers_are_judged_as_retry_or_refusal() {
        let unavailable = |s: u16| {
            matches!(
                judge(StatusCode::from_u16(s).unwrap(), "", 3),
                Err(Failure::Unavailable(_))
            )
        };
        assert!(unavailable(500) && unavailable(503) && unavailable(429));
        assert_eq!(
            judge(StatusCode::BAD_REQUEST, r#"{"accepted": 2}"#, 3),
            Err(Failure::Refused {
                accepted: 2,
                reason: r#"HTTP 400 Bad Request: {"accepted": 2}"#.into()
            })
        );
        for body in ["", "not json", r#"{"accepted": 3}"#] {
            assert!(matches!(
                judge(StatusCode::UNPROCESSABLE_ENTITY, body, 3),
                Err(Failure::Refused { accepted: 0, .. })
            ));
        }
    }
}
