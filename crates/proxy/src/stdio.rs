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
//!
//! The server runs in a process group of its own. Told to stop (a signal, watched until the
//! session is recorded as ended), the proxy stops that group, SIGTERM then SIGKILL, within the
//! grace a client gives the proxy itself, and records the session's end with how the server
//! ended ([`crate::ServerExit`]).

use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_audit_store::{RecordError, Recorder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::exit::{ServerExit, Stop, signal_group};
use crate::interpreter::{Direction, Interpreter, SessionConfig};
pub use crate::tap::MAX_FRAME;
use crate::tap::{Held, Oversize, Refusal, Tap, Verdict, unstamped};

/// How long a server may take to exit once its input is closed, before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// How long the server's process group has to exit after SIGTERM before it is killed. Short:
/// a client built on the TypeScript SDK kills the proxy 2 s after its own SIGTERM, and within
/// that time the proxy must also record the session's end and shut its recorder.
const STOP_GRACE: Duration = Duration::from_millis(750);

/// What to run and how to record it.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The server command and its arguments.
    pub command: Vec<OsString>,
    pub session: SessionConfig,
    /// Where the calls refused are counted, for `/metrics` (`Denials::default()` when nobody
    /// reads them).
    pub denials: crate::metrics::Denials,
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
    let tap = Tap::new(recorder, config.denials.clone());
    let command = config
        .command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let spawned = match config.command.split_first() {
        Some((program, args)) => Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            // A group of its own, led by the server: stopped whole (see `exit`).
            .process_group(0)
            .kill_on_drop(true)
            .spawn(),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no server command given",
        )),
    };
    let mut child = match spawned {
        Ok(child) => child,
        Err(source) => {
            // On record: an attempt that ran nothing still says who tried to run what.
            let r = Interpreter::new(config.session).start_failed(&command, &source.to_string());
            tap.queue_one(r).await;
            return Err(ProxyError::Spawn { command, source });
        }
    };
    // The server leads its group: the group's id is its pid, known until it is reaped.
    let group = child.id();
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
        tap.clone(),
        Side::Requests(refusals),
        stop.clone(),
    ));
    let mut to_client = tokio::spawn(pump(
        server_out,
        client_out,
        Direction::ServerToClient,
        interpreter.clone(),
        tap.clone(),
        Side::Answers(refused),
        stop.clone(),
    ));

    // The session ends when the server stops talking (it exited or closed its output), or when
    // the client closes its input (we then close the server's, and give it time to exit).
    // Biased, in this order: when the client closed its input and the server then exited at
    // once, both pumps may be done by the time this is polled, and the cause is the client.
    // `shutdown` is watched to the end: a client built on the TypeScript SDK closes our input,
    // waits 2 s, sends SIGTERM and kills us 2 s later, and a proxy still waiting for the server
    // then is killed before it records the session's end.
    tokio::pin!(shutdown);
    let mut told_to_stop = false;
    let (reason, failure) = tokio::select! {
        biased;
        () = &mut shutdown => {
            told_to_stop = true;
            ("the proxy was told to stop", None)
        }
        result = &mut to_server => {
            let mut failure = pump_failure(result);
            tokio::select! {
                biased;
                () = &mut shutdown => told_to_stop = true,
                result = tokio::time::timeout(EXIT_GRACE, &mut to_client) => match result {
                    Ok(result) => failure = failure.or(pump_failure(result)),
                    Err(_) => tracing::warn!("the server did not close its output; stopping it"),
                },
            }
            ("client closed its input", failure)
        }
        result = &mut to_client => ("server closed its output", pump_failure(result)),
    };
    let exit = if told_to_stop {
        stop_server(&mut child, group).await
    } else {
        let waited = tokio::select! {
            biased;
            () = &mut shutdown => None,
            status = tokio::time::timeout(EXIT_GRACE, child.wait()) => Some(status),
        };
        match waited {
            Some(Ok(status)) => status.ok().and_then(ServerExit::of),
            // Told to stop meanwhile, or the grace is over.
            None | Some(Err(_)) => {
                told_to_stop |= waited.is_none();
                stop_server(&mut child, group).await
            }
        }
    };
    stop.cancel();
    // Once told to stop, the client's own grace is short: the pumps get what is left of it.
    let pump_grace = if told_to_stop { STOP_GRACE } else { EXIT_GRACE };
    for (pump, direction) in [(to_server, "client"), (to_client, "server")] {
        if pump.is_finished() {
            continue;
        }
        // A pump still running is recording what it read last (waiting for room in a full
        // queue), or writing to a peer: the first ends when the writer catches up, the second
        // may never (a client that stopped reading its output).
        let mut pump = pump;
        if tokio::time::timeout(pump_grace, &mut pump).await.is_err() {
            pump.abort();
            tracing::error!(
                "the {direction}'s last frames could not be recorded within {pump_grace:?} of the \
                 session's end; any not yet queued are not on record"
            );
        }
    }
    let exit_code = exit.and_then(ServerExit::code);

    let records = lock(&interpreter).finish_after_exit(reason, exit, Instant::now());
    tap.queue(records, &unstamped).await;
    match failure {
        Some(e) => Err(e),
        None => Ok(exit_code),
    }
}

/// Stops the server: SIGTERM to its process group, SIGKILL to what is left of the group
/// after [`STOP_GRACE`] (members that outlived the leader are not left running alone).
/// Returns how the server ended.
async fn stop_server(child: &mut Child, group: Option<u32>) -> Option<ServerExit> {
    let Some(group) = group else {
        let _ = child.start_kill();
        return child.wait().await.ok().and_then(ServerExit::of);
    };
    signal_group(group, Stop::Ask);
    let exited = tokio::time::timeout(STOP_GRACE, child.wait()).await;
    signal_group(group, Stop::Force);
    let status = match exited {
        Ok(status) => status.ok(),
        Err(_) => child.wait().await.ok(),
    };
    status.and_then(ServerExit::of)
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
    tap: Tap,
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
    // An oversized frame being streamed through (or dropped, to be refused).
    let mut oversize: Option<Oversize> = None;
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
            if !buf.is_empty() || oversize.is_some() {
                // A last frame without a newline: still seen, and forwarded unless refused.
                let frame = trim_cr(&buf);
                if pass(&tap, &interpreter, &side, direction, oversize.take(), frame).await? {
                    to.write_all(&buf).await?;
                }
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
        let mut held: Vec<(std::ops::Range<usize>, Held)> = Vec::new();
        // The lines not forwarded: refused, or their intents could not be written.
        let mut refused = Vec::new();
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos + 1;
            let line = &buf[start..end];
            let frame = trim_cr(&line[..line.len() - 1]);
            match see(&tap, &interpreter, &side, direction, oversize.take(), frame).await {
                Verdict::Forward(intents) if intents.is_empty() => {}
                Verdict::Forward(intents) => held.push((start..end, intents)),
                Verdict::Refuse(refusal) => {
                    answer(&side, refusal);
                    refused.push(start..end);
                }
            }
            start = end;
        }
        for (line, intents) in held {
            if let Err(error) = intents.durable().await {
                let frame = trim_cr(&buf[line.start..line.end - 1]);
                match &side {
                    Side::Requests(_) => {
                        answer(
                            &side,
                            tap.deny(&interpreter, frame, &error, &unstamped).await,
                        );
                        refused.push(line);
                    }
                    Side::Answers(_) => return Err(ProxyError::IntentNotRecorded(error)),
                }
            }
        }
        // Everything read, less the refused lines (one write when none was refused).
        refused.sort_by_key(|line: &std::ops::Range<usize>| line.start);
        let mut from = 0;
        for line in refused {
            to.write_all(&buf[from..line.start]).await?;
            from = line.end;
        }
        to.write_all(&buf[from..start]).await?;
        buf.drain(..start);
        if buf.len() > MAX_FRAME || (oversize.is_some() && !buf.is_empty()) {
            // Too large to hold: forward what we have (or, in `sync` from the client, drop it:
            // the frame will be refused) and keep only its start, size and hash.
            match &mut oversize {
                Some(frame) => frame.update(&buf),
                None => {
                    let forwarded = !(matches!(side, Side::Requests(_))
                        && lock(&interpreter).records_intents());
                    oversize = Some(Oversize::start(&buf, forwarded));
                }
            }
            if oversize.as_ref().is_some_and(|o| o.forwarded) {
                to.write_all(&buf).await?;
            }
            buf.clear();
        }
        to.flush().await?;
    }
}

/// What becomes of one frame read from `direction`: the client's are admitted (and may be
/// refused), the server's interpreted. `oversize` is the frame's earlier part if it was too
/// large to hold, `frame` the rest.
async fn see(
    tap: &Tap,
    interpreter: &Mutex<Interpreter>,
    side: &Side,
    direction: Direction,
    oversize: Option<Oversize>,
    frame: &[u8],
) -> Verdict {
    match side {
        Side::Requests(_) => tap.admit(interpreter, frame, oversize, &unstamped).await,
        Side::Answers(_) => Verdict::Forward(
            tap.see(interpreter, direction, frame, oversize, &unstamped)
                .await,
        ),
    }
}

/// Records one frame, and says whether it may be forwarded: refused (its requests answered
/// by the proxy), or its intents durable.
async fn pass(
    tap: &Tap,
    interpreter: &Mutex<Interpreter>,
    side: &Side,
    direction: Direction,
    oversize: Option<Oversize>,
    frame: &[u8],
) -> Result<bool, ProxyError> {
    let intents = match see(tap, interpreter, side, direction, oversize, frame).await {
        Verdict::Forward(intents) => intents,
        Verdict::Refuse(refusal) => {
            answer(side, refusal);
            return Ok(false);
        }
    };
    match (intents.durable().await, side) {
        (Ok(()), _) => Ok(true),
        (Err(error), Side::Requests(_)) => {
            answer(side, tap.deny(interpreter, frame, &error, &unstamped).await);
            Ok(false)
        }
        (Err(error), Side::Answers(_)) => Err(ProxyError::IntentNotRecorded(error)),
    }
}

/// Sends the proxy's answer to a refused frame's requests to the client, through the pump that
/// owns the client's output.
fn answer(side: &Side, refusal: Refusal) {
    if let (Side::Requests(refusals), Some(answer)) = (side, refusal.answer) {
        // The other pump is gone only when the session is ending.
        let _ = refusals.send(answer);
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}
