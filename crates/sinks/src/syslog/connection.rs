//! The stream to the receiver: plain TCP or TLS, connected on demand, and checked for a
//! receiver that went away before each batch is written.
//!
//! Why the check: a syslog receiver never writes back, so a receiver that restarted leaves our
//! end of the connection looking healthy, and the first write after it succeeds locally (the
//! kernel takes it) and is lost with the reset that answers it. Before writing, we peek at the
//! socket without blocking: end of stream or an error means the receiver is gone, and we
//! reconnect first (as rsyslog's own forwarder does). What remains is the window between that
//! check and the write, and a receiver that crashes after taking the bytes: see the module
//! documentation of [`super`].

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use rustix::net::RecvFlags;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

/// How long to let rustls read what a TLS receiver sent (session tickets, a close alert)
/// before deciding whether the connection still stands. Only spent when bytes are waiting.
const TLS_DRAIN: Duration = Duration::from_millis(20);

/// A connected stream.
pub(crate) enum Connection {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// TLS settings, ready to use.
#[derive(Clone)]
pub(crate) struct Tls {
    pub connector: TlsConnector,
    pub server_name: ServerName<'static>,
}

impl Connection {
    /// Connects to `address`, and runs the TLS handshake when `tls` is given.
    pub async fn open(address: &str, tls: Option<&Tls>) -> io::Result<Connection> {
        let tcp = TcpStream::connect(address).await?;
        tcp.set_nodelay(true)?;
        match tls {
            None => Ok(Connection::Tcp(tcp)),
            Some(tls) => {
                let stream = tls.connector.connect(tls.server_name.clone(), tcp).await?;
                Ok(Connection::Tls(Box::new(stream)))
            }
        }
    }

    /// Writes `bytes` and flushes them to the socket.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Connection::Tcp(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Connection::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    /// Whether the receiver closed or reset the connection. Never blocks on a live one.
    pub async fn peer_closed(&mut self) -> bool {
        match self {
            Connection::Tcp(s) => loop {
                match peek(s) {
                    Peek::Closed => return true,
                    Peek::Open => return false,
                    // A syslog receiver has nothing to say; whatever it sent is dropped so
                    // that an end of stream behind it can be seen.
                    Peek::Data => {
                        let mut buf = [0u8; 4096];
                        match rustix::net::recv(s.as_fd(), &mut buf, RecvFlags::DONTWAIT) {
                            Ok((_, 0)) => return true,
                            Ok(_) => continue,
                            Err(rustix::io::Errno::AGAIN) => return false,
                            Err(_) => return true,
                        }
                    }
                }
            },
            Connection::Tls(s) => {
                // Records are waiting (a TLS 1.3 session ticket after the handshake, or a
                // close_notify): let rustls take them, then look again.
                while let Peek::Data = peek(s.get_ref().0) {
                    let mut buf = [0u8; 4096];
                    match tokio::time::timeout(TLS_DRAIN, s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => return true,
                        Ok(Ok(_)) => {}
                        // Nothing for the application: the waiting records were handshake
                        // messages, now consumed.
                        Err(_) => break,
                    }
                }
                matches!(peek(s.get_ref().0), Peek::Closed)
            }
        }
    }
}

enum Peek {
    Open,
    Data,
    Closed,
}

/// `recv(MSG_PEEK | MSG_DONTWAIT)`: what the socket holds, without taking it.
fn peek(stream: &TcpStream) -> Peek {
    let mut byte = [0u8; 1];
    match rustix::net::recv(
        stream.as_fd(),
        &mut byte,
        RecvFlags::PEEK | RecvFlags::DONTWAIT,
    ) {
        Ok((_, 0)) => Peek::Closed,
        Ok(_) => Peek::Data,
        Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => Peek::Open,
        Err(_) => Peek::Closed,
    }
}

/// rustls settings that trust only the certificate authorities in `roots`.
pub(crate) fn client_config(
    roots: tokio_rustls::rustls::RootCertStore,
) -> Result<Arc<tokio_rustls::rustls::ClientConfig>, tokio_rustls::rustls::Error> {
    use tokio_rustls::rustls;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}
