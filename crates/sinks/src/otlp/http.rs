//! OTLP/HTTP with protobuf bodies: `POST {endpoint}/v1/logs` and `/v1/traces`.
//!
//! Failure mapping. A 2xx is an acknowledgement (then its `partial_success` decides). A 400,
//! 413 or 422 says the data itself is refused: `Failure::Refused` at the batch's first record,
//! since the answer does not say which record. Everything else, including a connection refused,
//! a timeout, a 5xx and a 429, and also 401, 403 and 404, is `Failure::Unavailable`: a wrong
//! token or path is the operator's to fix, and until then the records wait in the trail rather
//! than fill the dead letters.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};

use super::answer;
use super::config::{Compression, OtlpConfig};
use super::error::OtlpError;
use crate::Failure;

const PROTOBUF: &str = "application/x-protobuf";

/// An OTLP/HTTP exporter: one client (its connection pool) and the two signal URLs.
pub struct HttpExporter {
    client: reqwest::Client,
    gzip: bool,
    logs_url: Url,
    traces_url: Url,
}

impl HttpExporter {
    pub fn new(config: &OtlpConfig, endpoint: &Url) -> Result<HttpExporter, OtlpError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let bad = |reason: String| OtlpError::Header {
                name: name.clone(),
                reason,
            };
            let header = HeaderName::try_from(name.as_str()).map_err(|e| bad(e.to_string()))?;
            let mut value =
                HeaderValue::try_from(value.as_str()).map_err(|e| bad(e.to_string()))?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
        let gzip = config.compression == Compression::Gzip;
        if gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let timeout = Duration::from_millis(config.timeout_ms);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| OtlpError::Client(e.to_string()))?;
        Ok(HttpExporter {
            client,
            gzip,
            logs_url: signal_url(endpoint, "v1/logs")?,
            traces_url: signal_url(endpoint, "v1/traces")?,
        })
    }

    pub async fn export_logs(&self, request: ExportLogsServiceRequest) -> Result<(), Failure> {
        let answer: ExportLogsServiceResponse = self.post(&self.logs_url, request).await?;
        match answer.partial_success {
            Some(p) => {
                answer::partial_success("log records", p.rejected_log_records, &p.error_message)
            }
            None => Ok(()),
        }
    }

    pub async fn export_traces(&self, request: ExportTraceServiceRequest) -> Result<(), Failure> {
        let answer: ExportTraceServiceResponse = self.post(&self.traces_url, request).await?;
        match answer.partial_success {
            Some(p) => answer::partial_success("spans", p.rejected_spans, &p.error_message),
            None => Ok(()),
        }
    }

    /// POSTs one protobuf request and decodes the receiver's answer. A 2xx whose body is not
    /// the expected message (a receiver that answers `{}` or nothing) still acknowledges.
    async fn post<A: Message + Default>(
        &self,
        url: &Url,
        request: impl Message,
    ) -> Result<A, Failure> {
        let unavailable = |e: reqwest::Error| Failure::Unavailable(format!("{url}: {}", chain(&e)));
        let body = if self.gzip {
            gzip(&request.encode_to_vec())
        } else {
            request.encode_to_vec()
        };
        let response = self
            .client
            .post(url.clone())
            .body(body)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        let is_protobuf = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(PROTOBUF));
        let body = response.bytes().await.map_err(unavailable)?;
        if status.is_success() {
            return Ok(A::decode(body).unwrap_or_default());
        }
        let said = if is_protobuf {
            RpcStatus::decode(body.clone())
                .map(|s| s.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned())
        } else {
            String::from_utf8_lossy(&body).into_owned()
        };
        let reason = format!("{url}: HTTP {status}: {}", answer::excerpt(&said));
        if refuses_the_data(status) {
            Err(Failure::Refused {
                accepted: 0,
                reason,
            })
        } else {
            Err(Failure::Unavailable(reason))
        }
    }
}

/// `bytes` gzipped. Writing into a `Vec` cannot fail, so neither can this.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    match encoder.write_all(bytes).and_then(|()| encoder.finish()) {
        Ok(gzipped) => gzipped,
        Err(_) => unreachable!("writing into a Vec does not fail"),
    }
}

/// The status codes that refuse the data rather than the moment.
fn refuses_the_data(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNPROCESSABLE_ENTITY
    )
}

/// `{endpoint}/{path}`, keeping a path the endpoint already has (`https://host/otlp`).
fn signal_url(endpoint: &Url, path: &str) -> Result<Url, OtlpError> {
    let mut base = endpoint.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path).map_err(|e| OtlpError::Endpoint {
        endpoint: endpoint.to_string(),
        reason: e.to_string(),
    })
}

/// An error and its sources on one line: reqwest's own message alone ("error sending
/// request") hides the refused connection or the timeout.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `google.rpc.Status`, which OTLP/HTTP receivers send as the body of an error answer; only
/// the fields read here.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[cfg(test)]
mod tests {
    use reqwest::Url;

    use super::signal_url;

    #[test]
    fn signal_paths_are_appended_to_the_endpoint_and_its_own_path() {
        for (endpoint, expected) in [
            ("http://collector:4318", "http://collector:4318/v1/logs"),
            ("http://collector:4318/", "http://collector:4318/v1/logs"),
            ("https://gw.example/otlp", "https://gw.example/otlp/v1/logs"),
        ] {
            let url = signal_url(&Url::parse(endpoint).unwrap(), "v1/logs").unwrap();
            assert_eq!(url.as_str(), expected);
        }
    }
}
