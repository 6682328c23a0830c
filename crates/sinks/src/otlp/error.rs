//! Why an OTLP sink cannot be built from its configuration.

/// A configuration the sink refuses at start-up, so that a typo fails loudly once instead of
/// failing every export.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// The endpoint is not an `http://` or `https://` URL.
    #[error("OTLP endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    /// A header's name or value cannot be sent (not a valid HTTP header or gRPC metadata).
    #[error("OTLP header {name:?}: {reason}")]
    Header { name: String, reason: String },
    /// `timeout_ms` is 0.
    #[error("OTLP timeout_ms must be at least 1")]
    Timeout,
    /// `max_request_bytes` is below the smallest useful size.
    #[error("OTLP max_request_bytes must be at least {min}, got {got}")]
    MaxRequestBytes { min: usize, got: usize },
    /// `service_name` is blank.
    #[error("OTLP service_name must not be blank")]
    ServiceName,
    /// The HTTP client could not be built (its TLS roots, for one).
    #[error("OTLP HTTP client: {0}")]
    Client(String),
}
