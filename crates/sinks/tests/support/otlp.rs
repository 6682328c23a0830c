//! The receiver the OTLP tests deliver to: an HTTP server that decodes `/v1/logs` and
//! `/v1/traces` bodies, or a tonic gRPC server implementing the collector's Logs and Trace
//! services, both with the official OTLP protobuf definitions (`opentelemetry-proto`). It keeps
//! what it decoded, answers as a test tells it to, refuses forever an export that holds a
//! record it was told to refuse (by its `mcp_audit.key`), and can be stopped and started again
//! on its port.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use mcp_audit_sinks::otlp::Protocol;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;

/// How the receiver answers the next exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Takes everything.
    Accept,
    /// Refuses the data: HTTP 400 with a `google.rpc.Status` body, gRPC `INVALID_ARGUMENT`.
    Refuse,
    /// Down for a moment: HTTP 503, gRPC `UNAVAILABLE`.
    Unavailable,
    /// Too busy: HTTP 429, gRPC `RESOURCE_EXHAUSTED`.
    Busy,
    /// A credential it does not take: HTTP 401, gRPC `UNAUTHENTICATED`.
    Unauthenticated,
    /// Never answers.
    Hang,
    /// Keeps the export, then answers OK after this long: past the client's timeout, what it
    /// kept arrived without an acknowledgement.
    Late(std::time::Duration),
    /// OK with a `partial_success` that rejects one item; keeps the rest.
    RejectOne,
    /// Accepts this many exports, then answers as `RejectOne`.
    RejectAfter(usize),
}

/// What the receiver got, as it decoded it.
#[derive(Default)]
pub struct Received {
    pub logs: Vec<ExportLogsServiceRequest>,
    pub traces: Vec<ExportTraceServiceRequest>,
    /// The `x-tenant` header or metadata of every export.
    pub tenants: Vec<String>,
    /// The `content-encoding` (HTTP) or `grpc-encoding` (gRPC) of every export, or `identity`.
    pub encodings: Vec<String>,
    /// The record keys of every export kept but not acknowledged: answered [`Answer::Late`],
    /// or with a `partial_success` that rejects part of it (OTLP does not say which part, so
    /// the sender must count the whole export as not taken).
    pub unacknowledged: BTreeSet<String>,
}

pub struct Shared {
    answer: Mutex<Answer>,
    /// Record keys refused forever: an export holding one is answered as [`Answer::Refuse`].
    refuse: Mutex<BTreeSet<String>>,
    /// Record keys rejected forever in a `partial_success`: an export holding one is answered
    /// as [`Answer::RejectOne`] and kept without them.
    reject: Mutex<BTreeSet<String>>,
    pub received: Mutex<Received>,
}

impl Shared {
    /// Keeps what an export carried, unless the receiver refuses it whole.
    async fn take(
        &self,
        keys: Vec<String>,
        tenant: Option<&str>,
        encoding: Option<&str>,
        keep: impl FnOnce(&mut Received),
    ) -> Answer {
        let answer = {
            let mut answer = self.answer.lock().unwrap();
            if let Answer::RejectAfter(n) = *answer {
                *answer = match n {
                    0 => Answer::RejectOne,
                    n => Answer::RejectAfter(n - 1),
                };
                if n > 0 {
                    Answer::Accept
                } else {
                    Answer::RejectOne
                }
            } else {
                *answer
            }
        };
        let refused = {
            let refuse = self.refuse.lock().unwrap();
            keys.iter().any(|k| refuse.contains(k))
        };
        let rejected = {
            let reject = self.reject.lock().unwrap();
            keys.iter().any(|k| reject.contains(k))
        };
        let answer = if refused && answer != Answer::Hang {
            Answer::Refuse
        } else if rejected && answer == Answer::Accept {
            Answer::RejectOne
        } else {
            answer
        };
        if answer == Answer::Hang {
            std::future::pending::<()>().await;
        }
        if matches!(answer, Answer::Accept | Answer::RejectOne | Answer::Late(_)) {
            let mut received = self.received.lock().unwrap();
            if let Answer::Late(_) | Answer::RejectOne = answer {
                let reject = self.reject.lock().unwrap();
                received
                    .unacknowledged
                    .extend(keys.into_iter().filter(|k| !reject.contains(k)));
            }
            keep(&mut received);
            received
                .tenants
                .push(tenant.unwrap_or_default().to_string());
            received
                .encodings
                .push(encoding.unwrap_or("identity").to_string());
        }
        if let Answer::Late(after) = answer {
            tokio::time::sleep(after).await;
        }
        answer
    }
}

impl Shared {
    /// The export without the log records it rejects (see [`Receiver::reject`]).
    fn without_rejected(&self, mut request: ExportLogsServiceRequest) -> ExportLogsServiceRequest {
        let reject = self.reject.lock().unwrap();
        for scope in request
            .resource_logs
            .iter_mut()
            .flat_map(|r| &mut r.scope_logs)
        {
            scope
                .log_records
                .retain(|l| key(&l.attributes).is_none_or(|k| !reject.contains(&k)));
        }
        request
    }
}

/// A receiver on its own port, HTTP or gRPC, that can be stopped and started again on that
/// port.
pub struct Receiver {
    addr: SocketAddr,
    pub shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    pub async fn start(protocol: Protocol) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shared = Arc::new(Shared {
            answer: Mutex::new(Answer::Accept),
            refuse: Mutex::new(BTreeSet::new()),
            reject: Mutex::new(BTreeSet::new()),
            received: Mutex::new(Received::default()),
        });
        let mut receiver = Receiver {
            addr: listener.local_addr().unwrap(),
            shared,
            stop: None,
            task: None,
        };
        receiver.serve(protocol, listener);
        receiver
    }

    /// An address where nothing listens (yet): a port the system gave and took back.
    pub async fn down(protocol: Protocol) -> Receiver {
        let mut receiver = Receiver::start(protocol).await;
        receiver.stop().await;
        receiver
    }

    fn serve(&mut self, protocol: Protocol, listener: TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let shared = self.shared.clone();
        self.task = Some(match protocol {
            Protocol::HttpProtobuf => {
                let app = axum::Router::new()
                    .route("/v1/logs", post(http_logs))
                    .route("/v1/traces", post(http_traces))
                    .with_state(shared);
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                        .unwrap();
                })
            }
            Protocol::Grpc => {
                let service = GrpcReceiver(shared);
                tokio::spawn(async move {
                    tonic::transport::Server::builder()
                        .add_service(
                            LogsServiceServer::new(service.clone())
                                .accept_compressed(CompressionEncoding::Gzip),
                        )
                        .add_service(
                            TraceServiceServer::new(service)
                                .accept_compressed(CompressionEncoding::Gzip),
                        )
                        .serve_with_incoming_shutdown(
                            tokio_stream::wrappers::TcpListenerStream::new(listener),
                            shutdown,
                        )
                        .await
                        .unwrap();
                })
            }
        });
        self.stop = Some(stop);
    }

    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Starts again on the same port.
    pub async fn restart(&mut self, protocol: Protocol) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(protocol, listener);
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn answer(&self, answer: Answer) {
        *self.shared.answer.lock().unwrap() = answer;
    }

    /// Refuses, from now on and forever, every export that holds the record `key`.
    pub fn refuse(&self, key: &str) {
        self.shared.refuse.lock().unwrap().insert(key.to_string());
    }

    /// Rejects, from now on and forever, the record `key` in a `partial_success` (HTTP 200,
    /// gRPC `OK`): the rest of each export that holds it is kept, unacknowledged.
    pub fn reject(&self, key: &str) {
        self.shared.reject.lock().unwrap().insert(key.to_string());
    }

    /// The `mcp_audit.key` of every log record received, in arrival order.
    pub fn log_keys(&self) -> Vec<String> {
        self.logs()
            .iter()
            .filter_map(|l| key(&l.attributes))
            .collect()
    }

    /// The `mcp_audit.key` of every span received, in arrival order.
    pub fn span_keys(&self) -> Vec<String> {
        self.spans()
            .iter()
            .filter_map(|s| key(&s.attributes))
            .collect()
    }

    pub fn logs(&self) -> Vec<LogRecord> {
        let received = self.shared.received.lock().unwrap();
        received
            .logs
            .iter()
            .flat_map(|r| &r.resource_logs)
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| s.log_records.clone())
            .collect()
    }

    pub fn spans(&self) -> Vec<Span> {
        let received = self.shared.received.lock().unwrap();
        received
            .traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    /// Every byte that arrived, re-encoded from what was decoded.
    pub fn bytes(&self) -> Vec<u8> {
        let received = self.shared.received.lock().unwrap();
        let mut out = Vec::new();
        for request in &received.logs {
            out.extend(request.encode_to_vec());
        }
        for request in &received.traces {
            out.extend(request.encode_to_vec());
        }
        out
    }
}

/// An OTLP/HTTP body, unzipped as its `Content-Encoding` says, decoded as `M`.
fn decode_body<M: Message + Default>(
    encoding: Option<&str>,
    body: &[u8],
) -> Result<M, prost::DecodeError> {
    match encoding {
        Some("gzip") => M::decode(gunzip(body).as_slice()),
        _ => M::decode(body),
    }
}

async fn http_logs(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    let encoding = header_text(&headers, "content-encoding");
    let request: ExportLogsServiceRequest = match decode_body(encoding, &body) {
        Ok(request) => request,
        Err(e) => return http_answer(StatusCode::BAD_REQUEST, rpc_status(&e.to_string())),
    };
    let keys = log_keys(&request);
    let request = shared.without_rejected(request);
    let answer = shared
        .take(keys, tenant(&headers), encoding, |r| r.logs.push(request))
        .await;
    let rejected = ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess {
            rejected_log_records: 1,
            error_message: "one record too large".into(),
        }),
    };
    http_reply(answer, ExportLogsServiceResponse::default(), rejected)
}

async fn http_traces(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    let encoding = header_text(&headers, "content-encoding");
    let request: ExportTraceServiceRequest = match decode_body(encoding, &body) {
        Ok(request) => request,
        Err(e) => return http_answer(StatusCode::BAD_REQUEST, rpc_status(&e.to_string())),
    };
    let keys = span_keys(&request);
    let answer = shared
        .take(keys, tenant(&headers), encoding, |r| r.traces.push(request))
        .await;
    let rejected = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 1,
            error_message: "one span too large".into(),
        }),
    };
    http_reply(answer, ExportTraceServiceResponse::default(), rejected)
}

/// The `mcp_audit.key` attribute: the record's idempotency key.
fn key(attributes: &[KeyValue]) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == "mcp_audit.key")?;
    match value.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn log_keys(request: &ExportLogsServiceRequest) -> Vec<String> {
    request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .filter_map(|l| key(&l.attributes))
        .collect()
}

fn span_keys(request: &ExportTraceServiceRequest) -> Vec<String> {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .filter_map(|s| key(&s.attributes))
        .collect()
}

fn tenant(headers: &HeaderMap) -> Option<&str> {
    header_text(headers, "x-tenant")
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn http_reply(
    answer: Answer,
    ok: impl Message,
    rejected: impl Message,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    match answer {
        Answer::Accept | Answer::Late(_) => http_answer(StatusCode::OK, ok.encode_to_vec()),
        Answer::RejectOne => http_answer(StatusCode::OK, rejected.encode_to_vec()),
        Answer::Refuse => http_answer(StatusCode::BAD_REQUEST, rpc_status("bad attribute")),
        Answer::Unavailable => {
            http_answer(StatusCode::SERVICE_UNAVAILABLE, rpc_status("restarting"))
        }
        Answer::Busy => http_answer(StatusCode::TOO_MANY_REQUESTS, rpc_status("slow down")),
        Answer::Unauthenticated => http_answer(StatusCode::UNAUTHORIZED, rpc_status("who are you")),
        Answer::Hang | Answer::RejectAfter(_) => unreachable!("answered before"),
    }
}

fn http_answer(
    status: StatusCode,
    body: Vec<u8>,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    (
        status,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        body,
    )
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error answer.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn rpc_status(message: &str) -> Vec<u8> {
    RpcStatus {
        code: 3,
        message: message.to_string(),
    }
    .encode_to_vec()
}

#[derive(Clone)]
struct GrpcReceiver(Arc<Shared>);

impl GrpcReceiver {
    fn status(answer: Answer) -> Result<(), tonic::Status> {
        match answer {
            Answer::Accept | Answer::RejectOne | Answer::Late(_) => Ok(()),
            Answer::Refuse => Err(tonic::Status::invalid_argument("bad attribute")),
            Answer::Unavailable => Err(tonic::Status::unavailable("restarting")),
            Answer::Busy => Err(tonic::Status::resource_exhausted("slow down")),
            Answer::Unauthenticated => Err(tonic::Status::unauthenticated("who are you")),
            Answer::Hang | Answer::RejectAfter(_) => unreachable!("answered before"),
        }
    }
}

fn grpc_text<T>(request: &tonic::Request<T>, key: &str) -> Option<String> {
    let value = request.metadata().get(key)?;
    value.to_str().ok().map(str::to_string)
}

#[tonic::async_trait]
impl LogsService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let tenant = grpc_text(&request, "x-tenant");
        let encoding = grpc_text(&request, "grpc-encoding");
        let keys = log_keys(request.get_ref());
        let request = self.0.without_rejected(request.into_inner());
        let answer = self
            .0
            .take(keys, tenant.as_deref(), encoding.as_deref(), |r| {
                r.logs.push(request)
            })
            .await;
        GrpcReceiver::status(answer)?;
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: (answer == Answer::RejectOne).then(|| ExportLogsPartialSuccess {
                rejected_log_records: 1,
                error_message: "one record too large".into(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let tenant = grpc_text(&request, "x-tenant");
        let encoding = grpc_text(&request, "grpc-encoding");
        let keys = span_keys(request.get_ref());
        let answer = self
            .0
            .take(keys, tenant.as_deref(), encoding.as_deref(), |r| {
                r.traces.push(request.into_inner())
            })
            .await;
        GrpcReceiver::status(answer)?;
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: (answer == Answer::RejectOne).then(|| ExportTracePartialSuccess {
                rejected_spans: 1,
                error_message: "one span too large".into(),
            }),
        }))
    }
}
