//! The `post` target: each signed checkpoint POSTed, as the signed note (`text/plain`), to an
//! http(s) URL (a collector, a monitor, another team's bucket behind a small service), in size
//! order, like `checkpoint --post` but from a durable cursor: the largest size the URL
//! acknowledged (a 2xx) is kept in the store ([`Witnessing::put_sent_size`]) after each one,
//! so a round after a restart or an outage sends what is missing and nothing twice, except a
//! checkpoint whose acknowledgement was lost.

use std::time::Duration;

use mcp_audit_store::{Append, Audit, Witnessing};

use super::{Step, WitnessError};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct PostWitness {
    url: reqwest::Url,
    client: reqwest::Client,
    /// As the tlog target's: a round is one blocking call.
    runtime: super::RoundRuntime,
}

impl PostWitness {
    pub fn new(url: &str) -> Result<PostWitness, WitnessError> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| WitnessError::Config(format!("URL `{url}`: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WitnessError::Config(format!(
                "URL `{url}`: only http:// and https://"
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| WitnessError::Config(format!("the HTTP client: {e}")))?;
        let runtime = super::RoundRuntime::new()?;
        Ok(PostWitness {
            url,
            client,
            runtime,
        })
    }

    /// One round: every stored checkpoint larger than the cursor, oldest first; stops at the
    /// first failure (the cursor then holds what was acknowledged).
    pub fn step<S>(&mut self, store: &mut S) -> Result<Step, WitnessError>
    where
        S: Append + Audit + Witnessing + ?Sized,
    {
        let target = self.url.to_string();
        let sent = store.sent_size(&target)?;
        let missing: Vec<(u64, String)> = store
            .checkpoints()?
            .into_iter()
            .filter(|(size, _)| *size > sent)
            .collect();
        let Some(&(last, _)) = missing.last() else {
            return Ok(Step::UpToDate);
        };
        for (size, note) in &missing {
            self.runtime.block_on(self.post(*size, note))?;
            store.put_sent_size(&target, *size)?;
        }
        Ok(Step::Posted {
            count: missing.len(),
            size: last,
        })
    }

    async fn post(&self, size: u64, note: &str) -> Result<(), WitnessError> {
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(note.to_string())
            .send()
            .await
            .map_err(|e| WitnessError::Unavailable {
                url: self.url.to_string(),
                reason: e.to_string(),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(WitnessError::Unavailable {
                url: self.url.to_string(),
                reason: format!("HTTP {status}"),
            });
        }
        Err(WitnessError::Refused {
            url: self.url.to_string(),
            size,
            status: status.as_u16(),
            reason: response.text().await.unwrap_or_default().trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use mcp_audit_core::checkpoint::NoteSigner;
    use mcp_audit_store::integrity::sign_checkpoint;
    use mcp_audit_store::{Recorder, RecorderConfig, SqliteOptions, SqliteStore};

    use super::*;

    /// A real HTTP receiver on 127.0.0.1: answers each request with the next status of
    /// `statuses` (then 200), and keeps the bodies it answered 200 to.
    fn receiver(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/checkpoints", listener.local_addr().unwrap());
        let kept = Arc::new(Mutex::new(Vec::new()));
        let bodies = Arc::clone(&kept);
        std::thread::spawn(move || {
            let mut statuses = statuses.into_iter();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let status = statuses.next().unwrap_or(200);
                if status == 200 {
                    bodies
                        .lock()
                        .unwrap()
                        .push(String::from_utf8(body).unwrap());
                }
                let _ = write!(
                    reader.get_mut(),
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        (url, kept)
    }

    fn grow(path: &std::path::Path, signer: &NoteSigner, n: u64) {
        let store = SqliteStore::open(path, SqliteOptions::default()).unwrap();
        let recorder = Recorder::start(store, RecorderConfig::default()).unwrap();
        for i in 0..n {
            let event = mcp_audit_core::AuditEvent::tool_execution(format!("t{i}"))
                .build()
                .unwrap();
            recorder.record(event).unwrap();
        }
        recorder.shutdown().unwrap();
        let mut store = SqliteStore::open(path, SqliteOptions::default()).unwrap();
        sign_checkpoint(&mut store, signer, "log.test/p").unwrap();
    }

    #[test]
    fn checkpoints_are_posted_in_order_from_the_cursor_and_a_failure_resumes_there() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let signer = NoteSigner::generate("log.test").unwrap();
        // The receiver fails the second request with 503.
        let (url, kept) = receiver(vec![200, 503]);
        let mut post = PostWitness::new(&url).unwrap();
        grow(&db, &signer, 1);
        grow(&db, &signer, 1);
        grow(&db, &signer, 1);
        let mut store = SqliteStore::open(&db, SqliteOptions::default()).unwrap();
        let failed = post.step(&mut store).unwrap_err();
        assert!(
            matches!(failed, WitnessError::Unavailable { .. }),
            "{failed}"
        );
        assert_eq!(store.sent_size(&url.to_string()).unwrap(), 1);
        // The next round resumes after the acknowledged one: 2 and 3, nothing twice.
        assert_eq!(
            post.step(&mut store).unwrap(),
            Step::Posted { count: 2, size: 3 }
        );
        assert_eq!(post.step(&mut store).unwrap(), Step::UpToDate);
        let sizes: Vec<u64> = kept
            .lock()
            .unwrap()
            .iter()
            .map(|note| signer.verifier().open(note).unwrap().size)
            .collect();
        assert_eq!(sizes, vec![1, 2, 3]);
    }
}
