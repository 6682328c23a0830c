//! The stdio transport adapter: the client starts us instead of the server; we start the server
//! as a child and pass both byte streams through, line by line, exactly as they came.
//!
//! Frames are newline-delimited JSON-RPC. Each complete line is forwarded byte for byte (the
//! interpreter sees a copy); only in `sync` mode is a `tools/call`, `resources/read` or
//! `prompts/get` held back until its intent is durable. Fail-closed: if that record can not be
//! written, the frame is not forwarded; the interpreter records its requests as `denied` (queued,
//! so on record once the store takes writes again), the proxy answers each with a JSON-RPC error
//! of its own, and the session goes on: a store locked for a moment costs the client one failed
//! call, not its server.

use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_audit_core::{AuditEvent, EventId, Outcome};
use mcp_audit_store::{RecordError, Recorder, StoredEvent};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::interpreter::{Direction, Interpreter, Record, SessionConfig};

/// Frames larger than this are forwarded without being interpreted (recorded by size and hash).
pub const MAX_FRAME: usize = 10 * 1024 * 1024;

/// How long a server may take to exit once its input is closed, before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// What to run and how to record it.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The server command and its arguments.
    pub command: Vec<OsString>,
    pub session: SessionConfig,
}

/// Why the proxy stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The server command could not be started.
    #[error("cannot start the MCP server `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    /// `sync` mode: an intent could not be made durable, so its operation was not forwarded.
    #[error(
        "the audit record of a request could not be written, so the request was not forwarded: {0}"
    )]
    IntentNotRecorded(RecordError),
    /// Reading from or writing to one of the peers failed.
    #[error("stdio: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs one proxied session to its end and returns the server's exit code.
///
/// `shutdown` completes when the proxy is told to stop (a signal): the server is stopped, and
/// the unanswered operations and the session end are still recorded.
pub async fn run_stdio<R, W>(
    config: ProxyConfig,
    recorder: Recorder,
    client_in: R,
    client_out: W,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Option<i32>, ProxyError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Some((program, args)) = config.command.split_first() else {
        return Err(ProxyError::Spawn {
            command: String::new(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no server command given",
            ),
        });
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ProxyError::Spawn {
            command: config
                .command
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            source,
        })?;
    let (Some(server_in), Some(server_out)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(ProxyError::Io(std::io::Error::other(
            "the server's pipes are missing",
        )));
    };

    let interpreter = Arc::new(Mutex::new(Interpreter::new(config.session)));
    // Tells the pumps to stop reading once the session is over. They stop between frames,
    // never inside one's recording: a pump aborted there would lose the record it was handing
    // to a full queue.
    let stop = CancellationToken::new();
    // The proxy's own answers to requests it refused: written to the client by the pump that
    // owns the client's output, between the server's lines.
    let (refusals, refused) = mpsc::unbounded_channel();
    let mut to_server = tokio::spawn(pump(
        client_in,
        server_in,
        Direction::ClientToServer,
        interpreter.clone(),
        recorder.clone(),
        Side::Requests(refusals),
        stop.clone(),
    ));
    let mut to_client = tokio::spawn(pump(
        server_out,
        client_out,
        Direction::ServerToClient,
        interpreter.clone(),
        recorder.clone(),
        Side::Answers(refused),
        stop.clone(),
    ));

    // The session ends when the server stops talking (it exited or closed its output), or when
    // the client closes its input (we then close the server's, and give it time to exit).
    // Biased, in this order: when the client closed its input and the server then exited at
    // once, both pumps may be done by the time this is polled, and the cause is the client.
    let (reason, failure) = tokio::select! {
        biased;
        () = shutdown => {
            let _ = child.start_kill();
            ("the proxy was told to stop", None)
        }
        result = &mut to_server => {
            let mut failure = pump_failure(result);
            match tokio::time::timeout(EXIT_GRACE, &mut to_client).await {
                Ok(result) => failure = failure.or(pump_failure(result)),
                Err(_) => tracing::warn!("the server did not close its output; stopping it"),
            }
            ("client closed its input", failure)
        }
        result = &mut to_client => ("server closed its output", pump_failure(result)),
    };
    let status = match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.kill().await;
            child.wait().await.ok()
        }
    };
    stop.cancel();
    for (pump, direction) in [(to_server, "client"), (to_client, "server")] {
        if pump.is_finished() {
            continue;
        }
        // A pump still running is recording what it read last (waiting for room in a full
        // queue), or writing to a peer: the first ends when the writer catches up, the second
        // may never (a client that stopped reading its output).
        let mut pump = pump;
        if tokio::time::timeout(EXIT_GRACE, &mut pump).await.is_err() {
            pump.abort();
            tracing::error!(
                "the {direction}'s last frames could not be recorded within {EXIT_GRACE:?} of the \
                 session's end; any not yet queued are not on record"
            );
        }
    }
    let exit_code = status.and_then(|s| s.code());

    let records = lock(&interpreter).finish(reason, exit_code, Instant::now());
    for r in records {
        record(&recorder, r).await;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(exit_code),
    }
}

fn pump_failure(
    result: Result<Result<(), ProxyError>, tokio::task::JoinError>,
) -> Option<ProxyError> {
    match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(e) => Some(ProxyError::Io(std::io::Error::other(e.to_string()))),
    }
}

fn lock(i: &Mutex<Interpreter>) -> std::sync::MutexGuard<'_, Interpreter> {
    i.lock().unwrap_or_else(|p| p.into_inner())
}

/// Which way a pump carries frames, with its end of the channel of the proxy's own answers.
enum Side {
    /// Client to server: sends the answers to requests it does not forward.
    Requests(mpsc::UnboundedSender<Vec<u8>>),
    /// Server to client: writes those answers to the client, between the server's lines.
    Answers(mpsc::UnboundedReceiver<Vec<u8>>),
}

/// Copies `from` to `to` line by line, byte for byte, showing each line to the interpreter.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    direction: Direction,
    interpreter: Arc<Mutex<Interpreter>>,
    recorder: Recorder,
    mut side: Side,
    stop: CancellationToken,
) -> Result<(), ProxyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    // Made once: each one made registers with the token, and a read is made per chunk.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    // An oversized frame being streamed through: its hash so far, size, and first bytes.
    let mut oversize: Option<(Sha256, usize, Vec<u8>)> = None;
    loop {
        let read = match &mut side {
            Side::Answers(refused) => tokio::select! {
                () = &mut stopped => return Ok(()),
                // `read` is cancel-safe: a read that loses the race has consumed nothing.
                read = from.read(&mut chunk) => read,
                Some(answer) = refused.recv() => {
                    // Whole lines only: `buf` holds at most the start of the server's next one.
                    // Not shown to the interpreter: the refusal is on record already.
                    to.write_all(&answer).await?;
                    to.flush().await?;
                    continue;
                }
            },
            Side::Requests(_) => tokio::select! {
                () = &mut stopped => return Ok(()),
                read = from.read(&mut chunk) => read,
            },
        };
        let n = read?;
        if n == 0 {
            if !buf.is_empty() {
                // A last frame without a newline: still forwarded, still seen.
                let records = lock(&interpreter).frame(direction, trim_cr(&buf), Instant::now());
                handle(&recorder, records).await?;
                to.write_all(&buf).await?;
            }
            to.flush().await?;
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        // Every complete line of this read is interpreted first, so that the intents of all
        // of them are committed together (one group commit, not one fsync per request); then
        // the lines go out in order, in one write.
        let mut start = 0;
        // The lines held for their intents: where each ends, and its intents.
        let mut held: Vec<(std::ops::Range<usize>, Vec<IntentWrite>)> = Vec::new();
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos + 1;
            let line = &buf[start..end];
            let records = match oversize.take() {
                Some((mut hash, size, head)) => {
                    hash.update(line);
                    let r = lock(&interpreter).oversize(
                        direction,
                        &head,
                        size + line.len(),
                        hash.finalize().into(),
                    );
                    vec![r]
                }
                None => lock(&interpreter).frame(
                    direction,
                    trim_cr(&line[..line.len() - 1]),
                    Instant::now(),
                ),
            };
            let mut intents = Vec::new();
            for r in records {
                if r.before_forwarding {
                    let recorder = recorder.clone();
                    intents.push(tokio::spawn(async move {
                        recorder.record_durable_async(r.event).await
                    }));
                } else {
                    record(&recorder, r).await;
                }
            }
            // A store down past the limit: the requests are refused as if their intent failed.
            if let Side::Requests(_) = &side
                && let Some(error) =
                    crate::refused_in_outage(&recorder, trim_cr(&line[..line.len() - 1]))
            {
                intents.push(tokio::spawn(std::future::ready(Err(error))));
            }
            if !intents.is_empty() {
                held.push((start..end, intents));
            }
            start = end;
        }
        let mut refused = Vec::new();
        for (line, intents) in held {
            let mut failure = None;
            for intent in intents {
                match intent.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => failure = failure.or(Some(e)),
                    Err(e) => return Err(ProxyError::Io(std::io::Error::other(e.to_string()))),
                }
            }
            if let Some(error) = failure {
                match &side {
                    Side::Requests(refusals) => {
                        tracing::error!(%error, "an intent could not be recorded; the request was refused");
                        let frame = trim_cr(&buf[line.start..line.end - 1]);
                        let reason = crate::not_forwarded(&error);
                        // Queued like any outcome: written once the store takes writes again.
                        let records = lock(&interpreter).abandon(
                            direction,
                            frame,
                            Outcome::Denied,
                            &reason,
                            Instant::now(),
                        );
                        for r in records {
                            record(&recorder, r).await;
                        }
                        if let Some(answer) = crate::jsonrpc::refusal(frame, &reason) {
                            // The other pump is gone only when the session is ending.
                            let _ = refusals.send(answer);
                        }
                        refused.push(line);
                    }
                    Side::Answers(_) => return Err(ProxyError::IntentNotRecorded(error)),
                }
            }
        }
        // Everything read, less the refused lines (one write when none was refused).
        let mut from = 0;
        for line in refused {
            to.write_all(&buf[from..line.start]).await?;
            from = line.end;
        }
        to.write_all(&buf[from..start]).await?;
        buf.drain(..start);
        if buf.len() > MAX_FRAME {
            // Too large to hold: forward what we have and keep only its hash.
            let (hash, size, _) = oversize
                .get_or_insert_with(|| (Sha256::new(), 0, buf[..256.min(buf.len())].to_vec()));
            hash.update(&buf);
            *size += buf.len();
            to.write_all(&buf).await?;
            buf.clear();
        }
        to.flush().await?;
    }
}

/// An intent being made durable.
type IntentWrite = tokio::task::JoinHandle<Result<mcp_audit_store::Receipt, RecordError>>;

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Records what the interpreter produced: intents durably before the frame moves on, the rest
/// queued without holding the traffic.
async fn handle(recorder: &Recorder, records: Vec<Record>) -> Result<(), ProxyError> {
    for r in records {
        if r.before_forwarding {
            recorder
                .record_durable_async(r.event)
                .await
                .map_err(ProxyError::IntentNotRecorded)?;
        } else {
            record(recorder, r).await;
        }
    }
    Ok(())
}

async fn record(recorder: &Recorder, r: Record) {
    if let Err(error) = recorder.record_async(r.event).await {
        // Counted by the recorder and reported by its shutdown; the traffic goes on.
        tracing::error!(%error, "could not record an MCP event");
    }
}

/// The outcome events that close intents left pending by a proxy that stopped before their
/// answer (crash recovery): `incomplete`, linked to the intent, same correlation id.
pub fn incomplete_outcomes(pending: &[StoredEvent]) -> Vec<AuditEvent> {
    pending
        .iter()
        .map(|p| {
            let mut e = p.event.clone();
            e.id = EventId::new();
            e.timestamp = mcp_audit_core::now_micros();
            e.outcome = Outcome::Incomplete;
            e.completes = Some(p.event.id);
            e.payload.error_message =
                Some("the proxy stopped before the answer was recorded".into());
            e
        })
        .collect()
}
