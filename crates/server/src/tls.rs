//! HTTPS for `serve`: a certificate chain and its key read from PEM files, and a listener that
//! hands axum connections whose TLS handshake is done.
//!
//! Handshakes run each in a task of its own, so a client that opens a connection and then says
//! nothing holds up only itself (until [`HANDSHAKE_TIMEOUT`]), never the accept loop. The
//! crypto provider is named explicitly (ring, the one reqwest's rustls already brings), so the
//! process-wide default provider plays no part.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its handshake before its connection is closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections whose handshake is done and that axum has not taken yet.
const READY_QUEUE: usize = 64;

/// Why the certificate or key cannot be served with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file is missing or unreadable.
    #[error("cannot read the TLS {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{path} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)")]
    NoCertificate { path: String },
    /// The key file holds no PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[error("{path} holds no PEM private key: {reason}")]
    NoKey { path: String, reason: String },
    /// rustls refused the pair: most often a key that is not the certificate's.
    #[error("the TLS certificate {cert} and key {key} cannot be served: {reason}")]
    Rejected {
        cert: String,
        key: String,
        reason: String,
    },
}

/// The TLS configuration of `serve`: the chain in `cert` (leaf first) and its private key in
/// `key`, both PEM. A key that is not the certificate's is refused here, at start-up, rather
/// than at the first handshake.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_pem = read("certificate", cert)?;
    let key_pem = read("key", key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.display().to_string(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    let rejected = |reason: String| TlsError::Rejected {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        reason,
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| rejected(e.to_string()))?
            .with_no_client_auth()
            // Checks that the key is the certificate's (`CertifiedKey::keys_match`).
            .with_single_cert(chain, private_key)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                    rejected("the private key is not the certificate's".into())
                }
                other => rejected(other.to_string()),
            })?;
    // The router speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// A listener whose connections are TLS sessions, handshaken.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    /// The accept loop; stopped when the listener is dropped (at the server's end).
    accepting: JoinHandle<()>,
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, config: Arc<ServerConfig>) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (send, ready) = mpsc::channel(READY_QUEUE);
        let accepting = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // As axum does: out of descriptors and the like pass; wait a little.
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let send = send.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = send.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            local_addr,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Some(ready) = self.ready.recv().await {
                return ready;
            }
            // The accept loop ended (it only does when aborted): nothing more will come.
            std::future::pending::<()>().await;
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../cli/tests/tls")
            .join(name)
    }

    #[test]
    fn a_certificate_and_its_key_make_a_configuration() {
        let config = server_config(&material("server.pem"), &material("server.key")).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_missing_file_a_non_pem_file_or_a_swapped_pair_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = server_config(&missing, &material("server.key")).unwrap_err();
        assert!(
            matches!(
                &error,
                TlsError::Read {
                    what: "certificate",
                    ..
                }
            ),
            "{error}"
        );
        let text = dir.path().join("text.pem");
        std::fs::write(&text, "not a certificate\n").unwrap();
        let error = server_config(&text, &material("server.key")).unwrap_err();
        assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
        let error = server_config(&material("server.pem"), &text).unwrap_err();
        assert!(matches!(error, TlsError::NoKey { .. }), "{error}");
        // The key file given as the certificate and the certificate as the key.
        let error = server_config(&material("server.key"), &material("server.pem")).unwrap_err();
        assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
        // A private key that is not the certificate's.
        let other_key =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../proxy/tests/keys/rsa_private.pem");
        let error = server_config(&material("server.pem"), &other_key).unwrap_err();
        assert!(
            matches!(&error, TlsError::Rejected { reason, .. } if reason.contains("not the certificate's")),
            "{error}"
        );
    }
}
