//! OTLP over gRPC: the collector's `LogsService/Export` and `TraceService/Export`.
//!
//! Failure mapping. `OK` is an acknowledgement (then its `partial_success` decides).
//! `INVALID_ARGUMENT` refuses the data: `Failure::Refused` at the batch's first record, the
//! answer not saying which. Every other code is `Failure::Unavailable`: `UNAVAILABLE`,
//! `RESOURCE_EXHAUSTED`, `DEADLINE_EXCEEDED` and the other transient ones the OTLP
//! specification lists, and also `UNAUTHENTICATED`, `PERMISSION_DENIED` and `UNIMPLEMENTED`,
//! which the operator fixes while the records wait in the trail.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use reqwest::Url;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use super::answer;
use super::config::{Compression, OtlpConfig};
use super::error::OtlpError;
use crate::Failure;

/// An OTLP/gRPC exporter. The channel is made at the first export (making one needs the async
/// runtime, which `Otlp::new` may run without) and reconnects by itself after an outage.
pub struct GrpcExporter {
    endpoint: Endpoint,
    channel: Option<Channel>,
    metadata: MetadataMap,
    gzip: bool,
}

impl GrpcExporter {
    pub fn new(config: &OtlpConfig, url: &Url) -> Result<GrpcExporter, OtlpError> {
        let bad_endpoint = |reason: String| OtlpError::Endpoint {
            endpoint: config.endpoint.clone(),
            reason,
        };
        let timeout = Duration::from_millis(config.timeout_ms);
        let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|e| bad_endpoint(e.to_string()))?
            .timeout(timeout)
            .connect_timeout(timeout);
        if url.scheme() == "https" {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_webpki_roots())
                .map_err(|e| bad_endpoint(e.to_string()))?;
        }
        let mut metadata = MetadataMap::new();
        for (name, value) in &config.headers {
            let bad = |reason: String| OtlpError::Header {
                name: name.clone(),
                reason,
            };
            let key = AsciiMetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map_err(|e| bad(e.to_string()))?;
            let value =
                AsciiMetadataValue::try_from(value.as_str()).map_err(|e| bad(e.to_string()))?;
            metadata.insert(key, value);
        }
        Ok(GrpcExporter {
            endpoint,
            channel: None,
            metadata,
            gzip: config.compression == Compression::Gzip,
        })
    }

    pub async fn export_logs(&mut self, request: ExportLogsServiceRequest) -> Result<(), Failure> {
        let mut client = LogsServiceClient::new(self.channel());
        if self.gzip {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        let answer = client
            .export(self.request(request))
            .await
            .map_err(failure)?
            .into_inner();
        match answer.partial_success {
            Some(p) => {
                answer::partial_success("log records", p.rejected_log_records, &p.error_message)
            }
            None => Ok(()),
        }
    }

    pub async fn export_traces(
        &mut self,
        request: ExportTraceServiceRequest,
    ) -> Result<(), Failure> {
        let mut client = TraceServiceClient::new(self.channel());
        if self.gzip {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        let answer = client
            .export(self.request(request))
            .await
            .map_err(failure)?
            .into_inner();
        match answer.partial_success {
            Some(p) => answer::partial_success("spans", p.rejected_spans, &p.error_message),
            None => Ok(()),
        }
    }

    fn channel(&mut self) -> Channel {
        self.channel
            .get_or_insert_with(|| self.endpoint.connect_lazy())
            .clone()
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        *request.metadata_mut() = self.metadata.clone();
        request
    }
}

fn failure(status: Status) -> Failure {
    let reason = format!(
        "gRPC {:?}: {}",
        status.code(),
        answer::excerpt(status.message())
    );
    match status.code() {
        Code::InvalidArgument => Failure::Refused {
            accepted: 0,
            reason,
        },
        _ => Failure::Unavailable(reason),
    }
}
