//! The `tlog-witness` target: a C2SP tlog-witness client.
//!
//! A round takes the log's newest stored checkpoint; if this witness has not co-signed it, it
//! sends `POST <url>/add-checkpoint` with
//!
//! ```text
//! old <size this witness last co-signed, or 0>\n
//! <consistency proof from that size, one base64 hash a line>\n...
//! \n
//! <the signed checkpoint note>
//! ```
//!
//! A 409 with `Content-Type: text/x.tlog.size` says which size the witness knows (its
//! cosignature of it may be lost here, or another sender got there first): the request is
//! sent again once from that size. A 200 carries the witness's signature lines; the one by the
//! configured key is checked against the checkpoint body before it is kept
//! ([`Witnessing::put_cosignature`]), and lines by other keys are ignored, as the spec asks.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mcp_audit_core::cosignature::{CosignatureVerifier, note_body};
use mcp_audit_store::integrity;
use mcp_audit_store::{Append, Audit, StoredCosignature, Witnessing};

use super::{Step, WitnessError};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The `Content-Type` of a 409's body (tlog-witness).
const SIZE_TYPE: &str = "text/x.tlog.size";
/// The longest answer read from a witness: a few signature lines.
const MAX_ANSWER: usize = 64 * 1024;

pub struct TlogWitness {
    url: reqwest::Url,
    key: CosignatureVerifier,
    client: reqwest::Client,
    /// The round's HTTP requests run on this runtime of its own, so that the round, which
    /// also calls the synchronous store (the PostgreSQL client blocks), is one blocking call:
    /// made from a thread or `spawn_blocking`, never from inside an async task.
    runtime: super::RoundRuntime,
}

/// What a witness answered to one submission.
enum Answer {
    /// Signature lines.
    Cosigned(String),
    /// The size it last co-signed, which is not the old size sent.
    Conflict(u64),
}

impl TlogWitness {
    /// `url` is the witness's submission prefix (http or https).
    pub fn new(url: &str, key: CosignatureVerifier) -> Result<TlogWitness, WitnessError> {
        let base = reqwest::Url::parse(url)
            .map_err(|e| WitnessError::Config(format!("witness URL `{url}`: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(WitnessError::Config(format!(
                "witness URL `{url}`: only http:// and https://"
            )));
        }
        let prefix = base.as_str().trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&format!("{prefix}/add-checkpoint"))
            .map_err(|e| WitnessError::Config(format!("witness URL `{url}`: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| WitnessError::Config(format!("the HTTP client: {e}")))?;
        let runtime = super::RoundRuntime::new()?;
        Ok(TlogWitness {
            url,
            key,
            client,
            runtime,
        })
    }

    /// `<name>+<key id hex>`: how the store names this witness's cosignatures.
    pub fn label(&self) -> String {
        format!("{}+{}", self.key.name(), hex::encode(self.key.key_id()))
    }

    /// One round; blocks (see [`TlogWitness::runtime`]).
    pub fn step<S>(&mut self, store: &mut S) -> Result<Step, WitnessError>
    where
        S: Append + Audit + Witnessing + ?Sized,
    {
        let Some((size, note)) = store.checkpoints()?.into_iter().next_back() else {
            return Ok(Step::UpToDate);
        };
        let label = self.label();
        let cosigned = store
            .cosignatures()?
            .into_iter()
            .filter(|c| c.witness == label)
            .map(|c| c.size)
            .max();
        if cosigned.is_some_and(|c| c >= size) {
            return Ok(Step::UpToDate);
        }
        let mut old = cosigned.unwrap_or(0);
        // At most one retry: from the size the witness says it knows.
        for _ in 0..2 {
            let body = self.request_body(store, old, size, &note)?;
            match self.runtime.block_on(self.send(body, size))? {
                Answer::Cosigned(lines) => {
                    let line = self.check(&note, &lines)?;
                    store.put_cosignature(&StoredCosignature {
                        size,
                        witness: label,
                        line: line.clone(),
                    })?;
                    return Ok(Step::Cosigned { size, line });
                }
                Answer::Conflict(known) if known > size => {
                    return Err(WitnessError::Refused {
                        url: self.url.to_string(),
                        size,
                        status: 409,
                        reason: format!(
                            "the witness co-signed a tree of {known} entries of this log, larger than its newest checkpoint ({size}): the log was cut back"
                        ),
                    });
                }
                Answer::Conflict(known) if known != old => old = known,
                // The witness knows the size sent and still conflicts: it co-signed another
                // tree of that size.
                Answer::Conflict(known) => {
                    return Err(WitnessError::Refused {
                        url: self.url.to_string(),
                        size,
                        status: 409,
                        reason: format!(
                            "the witness co-signed another tree of {known} entries of this log: the log forked from the one it saw"
                        ),
                    });
                }
            }
        }
        Err(WitnessError::Refused {
            url: self.url.to_string(),
            size,
            status: 409,
            reason: "the witness's size kept changing".into(),
        })
    }

    /// `old <old>\n`, the proof from `old` to `size`, a blank line, the note.
    fn request_body<S>(
        &self,
        store: &mut S,
        old: u64,
        size: u64,
        note: &str,
    ) -> Result<String, WitnessError>
    where
        S: Append + ?Sized,
    {
        // The proof MUST be empty from size 0 (and is, between equal sizes).
        let proof = if old == 0 || old >= size {
            Vec::new()
        } else {
            integrity::consistency(store, old, size)?
        };
        let mut body = format!("old {old}\n");
        for hash in proof {
            body.push_str(&STANDARD.encode(hash.0));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(note);
        Ok(body)
    }

    async fn send(&self, body: String, size: u64) -> Result<Answer, WitnessError> {
        let unavailable = |reason: String| WitnessError::Unavailable {
            url: self.url.to_string(),
            reason,
        };
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        let is_size = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(';').next().unwrap_or_default().trim() == SIZE_TYPE);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if bytes.len() > MAX_ANSWER {
            return Err(WitnessError::BadAnswer {
                url: self.url.to_string(),
                reason: format!("an answer of {} bytes", bytes.len()),
            });
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status.is_success() {
            return Ok(Answer::Cosigned(text));
        }
        if status == reqwest::StatusCode::CONFLICT && is_size {
            let known = text
                .strip_suffix('\n')
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| WitnessError::BadAnswer {
                    url: self.url.to_string(),
                    reason: format!("a 409 whose body is not a size: {text:?}"),
                })?;
            return Ok(Answer::Conflict(known));
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(unavailable(format!("HTTP {status}")));
        }
        Err(WitnessError::Refused {
            url: self.url.to_string(),
            size,
            status: status.as_u16(),
            reason: text.trim().to_string(),
        })
    }

    /// The cosignature line by this witness's key among `lines`, checked against the body of
    /// `note`.
    fn check(&self, note: &str, lines: &str) -> Result<String, WitnessError> {
        let bad = |reason: String| WitnessError::BadAnswer {
            url: self.url.to_string(),
            reason,
        };
        let body = note_body(note).ok_or_else(|| bad("the stored note has no body".into()))?;
        self.key
            .find(body, lines)
            .map(|c| c.line)
            .map_err(|e| bad(e.to_string()))
    }
}
