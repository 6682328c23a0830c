//! Which client connections the proxy serves, and how long it waits for their requests.
//!
//! Every connection holds one of `max_connections` permits while it is open; one that finds
//! none is answered 503 at once and closed, and that is logged. A connection that has not
//! sent a complete request head within `header_timeout` is closed by hyper, logged too. Without
//! both, 1,100 clients that each send half a request head took every file descriptor of a
//! proxy with the usual limit of 1,024, and from then on it served nobody, not even the
//! callers with valid tokens, and said nothing.
//!
//! The header timeout also closes a keep-alive connection idle that long (hyper times the wait
//! for the next request's head the same way).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;
use tower_service::Service;

use super::connection::Connection;
use super::server::App;
use super::stopped;

/// How many connections, and how slow ones, the listener accepts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; more are answered 503 and closed. At least 1.
    pub max_connections: usize,
    /// How long a client may take to send a request head (and a keep-alive connection may
    /// stay idle); then its connection is closed.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// How long to pause accepting after the system refused a connection (out of file
/// descriptors, say), so that a full table does not spin the loop.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// At most one log line per kind of refusal in this period, with the count since the last.
const LOG_PERIOD: Duration = Duration::from_secs(1);

/// The answer to a connection beyond the limit, written without reading its request.
const OVER_LIMIT: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
content-length: 44\r\nretry-after: 1\r\nconnection: close\r\n\r\nmcp-audit: too many open connections, retry\n";

/// Accepts and serves connections until `stopping` turns `true`; then tells every open
/// connection to finish its requests and close, and returns once they all have.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    app: Arc<App>,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let max_connections = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max_connections));
    let connections = TaskTracker::new();
    let refused = Arc::new(Tally::default());
    let timed_out = Arc::new(Tally::default());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stopping) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::error!(%error, "could not accept a connection");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Best effort, never waiting: the client may not read it.
            let _ = tcp.try_write(OVER_LIMIT);
            drop(tcp);
            if let Some(count) = refused.add() {
                tracing::warn!(
                    count,
                    max_connections,
                    %peer,
                    "connections refused (503): the proxy has as many open as it accepts \
                     (--max-connections)"
                );
            }
            continue;
        };
        // Without TCP_NODELAY, a head and a body written apart wait for the peer's delayed ACK.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
        let connection = Arc::new(Connection::new(app.clone()));
        let router = router.clone();
        let stopping = stopping.clone();
        let timed_out = timed_out.clone();
        connections.spawn(async move {
            let header_timeout = limits.header_timeout;
            let served = Arc::new(AtomicU64::new(0));
            let result = serve_one(
                tcp,
                peer,
                router,
                connection,
                limits,
                stopping,
                served.clone(),
            );
            if let Err(error) = result.await {
                // After a request, a timeout is most likely a keep-alive connection left idle.
                if error.is_timeout() && served.load(Ordering::Relaxed) == 0 {
                    if let Some(count) = timed_out.add() {
                        tracing::warn!(
                            count,
                            %peer,
                            "connections closed: no complete request head within {} s \
                             (--header-timeout)",
                            header_timeout.as_secs_f64()
                        );
                    }
                } else {
                    tracing::debug!(%error, %peer, "connection ended");
                }
            }
            drop(permit);
        });
    }
    connections.close();
    connections.wait().await;
}

/// Serves the requests of one connection: each gets the peer's address and the connection
/// (for the session of a server without session ids) in its extensions; `served` counts them.
async fn serve_one(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    connection: Arc<Connection>,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
    served: Arc<AtomicU64>,
) -> Result<(), hyper::Error> {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        served.fetch_add(1, Ordering::Relaxed);
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(connection.clone());
        let mut router = router.clone();
        async move {
            let response: Result<axum::response::Response, Infallible> =
                router.call(request.map(Body::new)).await;
            response
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let served = builder.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(served);
    tokio::select! {
        result = served.as_mut() => result,
        () = stopped(&mut stopping) => {
            // Finish the request in progress, if any, then close.
            served.as_mut().graceful_shutdown();
            served.await
        }
    }
}

/// Counts events that are logged at most once per [`LOG_PERIOD`].
#[derive(Default)]
struct Tally {
    /// Events not logged yet, and when the last log line went out.
    state: Mutex<(u64, Option<Instant>)>,
}

impl Tally {
    /// Counts one; returns the count to log when a line is due.
    fn add(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0 += 1;
        let due = state.1.is_none_or(|last| last.elapsed() >= LOG_PERIOD);
        if !due {
            return None;
        }
        let count = state.0;
        *state = (0, Some(Instant::now()));
        Some(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_over_limit_answer_declares_its_body_length() {
        let text = std::str::from_utf8(OVER_LIMIT).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let declared: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(declared, body.len());
        assert!(head.starts_with("HTTP/1.1 503 "));
    }

    #[test]
    fn a_tally_logs_the_first_at_once_and_then_at_most_once_a_period() {
        let tally = Tally::default();
        assert_eq!(tally.add(), Some(1));
        assert_eq!(tally.add(), None);
        assert_eq!(tally.add(), None);
        // A period later, the line counts every one since the last.
        tally.state.lock().unwrap().1 = Some(Instant::now() - LOG_PERIOD);
        assert_eq!(tally.add(), Some(3));
    }
}
