//! Posting signed checkpoints to a URL (a witness, a monitor, a collector elsewhere) as they are
//! signed: one more copy outside the database's reach, like `--checkpoint-out`.
//!
//! The writer's thread only queues a checkpoint; it never waits on the network. One thread posts
//! them in order (`POST`, body: the signed note as `text/plain`), retrying a failing endpoint a
//! few times. A checkpoint that could not be posted is logged at once, and
//! [`CheckpointPoster::finish`] reports how many, so the command ends with an error instead of
//! a silent gap. The checkpoint itself is stored in the database either way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mcp_audit_store::Publisher;
use mcp_audit_store::integrity::OutsideCheckpoint;

/// Checkpoints waiting to be posted; more than this behind means the endpoint is down.
const QUEUE: usize = 1024;
const ATTEMPTS: u32 = 3;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The posting thread and what it has failed to post.
pub struct CheckpointPoster {
    queue: mpsc::SyncSender<Option<OutsideCheckpoint>>,
    done: mpsc::Receiver<()>,
    url: reqwest::Url,
    failed: Arc<AtomicU64>,
}

impl CheckpointPoster {
    /// Starts the posting thread for `url`; the returned publisher queues checkpoints for it.
    pub fn start(url: &str) -> Result<(CheckpointPoster, Publisher)> {
        let url = reqwest::Url::parse(url).with_context(|| format!("checkpoint URL `{url}`"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("checkpoint URL `{url}`: only http:// and https:// can be posted to");
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the HTTP client for posting checkpoints")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the checkpoint poster")?;
        let (queue, incoming) = mpsc::sync_channel::<Option<OutsideCheckpoint>>(QUEUE);
        let (finished, done) = mpsc::channel();
        let failed = Arc::new(AtomicU64::new(0));
        std::thread::Builder::new()
            .name("mcp-audit-checkpoint-poster".into())
            .spawn({
                let url = url.clone();
                let failed = failed.clone();
                move || {
                    while let Ok(Some(checkpoint)) = incoming.recv() {
                        if let Err(error) = runtime.block_on(post(&client, &url, &checkpoint)) {
                            failed.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(
                                size = checkpoint.size,
                                %url,
                                error = format!("{error:#}"),
                                "could not post a checkpoint"
                            );
                        }
                    }
                    let _ = finished.send(());
                }
            })
            .context("starting the checkpoint poster thread")?;
        let publisher: Publisher = Arc::new({
            let queue = queue.clone();
            let failed = failed.clone();
            move |checkpoint: &OutsideCheckpoint| {
                if queue.try_send(Some(checkpoint.clone())).is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        size = checkpoint.size,
                        "too many checkpoints waiting to be posted: this one is not posted"
                    );
                }
            }
        });
        Ok((
            CheckpointPoster {
                queue,
                done,
                url,
                failed,
            },
            publisher,
        ))
    }

    /// Posts what is queued (waiting at most `timeout`), then stops; fails if any checkpoint
    /// could not be posted.
    pub fn finish(self, timeout: Duration) -> Result<()> {
        let _ = self.queue.send(None);
        if self.done.recv_timeout(timeout).is_err() {
            bail!(
                "checkpoints were still being posted to {} after {timeout:?}",
                self.url
            );
        }
        match self.failed.load(Ordering::Relaxed) {
            0 => Ok(()),
            n => bail!(
                "{n} checkpoint(s) could not be posted to {} (they are stored in the database)",
                self.url
            ),
        }
    }
}

/// One checkpoint, retried with a growing pause.
async fn post(client: &reqwest::Client, url: &reqwest::Url, c: &OutsideCheckpoint) -> Result<()> {
    let mut pause = Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        let result = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(c.note.clone())
            .send()
            .await
            .and_then(|r| r.error_for_status());
        match result {
            Ok(_) => return Ok(()),
            Err(error) if attempt >= ATTEMPTS => {
                return Err(error).with_context(|| format!("after {ATTEMPTS} attempts"));
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
        }
    }
}
