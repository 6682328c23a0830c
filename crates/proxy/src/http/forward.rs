//! What crosses the proxy: which headers go on, and the request to the upstream.
//!
//! Every end-to-end header passes unchanged both ways (`Mcp-Session-Id`,
//! `MCP-Protocol-Version`, `Last-Event-ID`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`, `Accept`,
//! `Content-Type`, `Authorization`, ...). Hop-by-hop headers (RFC 9110 §7.6.1) are the
//! connection's own and are dropped; `Host` and `Content-Length` are set again for the
//! upstream connection; `Accept-Encoding` is dropped so that the upstream answers in identity
//! encoding, which the proxy can read a copy of (the bytes still pass through unchanged).

use axum::http::{HeaderMap, HeaderName, Method, header};
use bytes::Bytes;

/// Headers that belong to one connection, not to the message.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

fn is_hop_by_hop(name: &HeaderName, listed: &[String]) -> bool {
    name == header::TRANSFER_ENCODING
        || HOP_BY_HOP.contains(&name.as_str())
        || listed.iter().any(|l| l.eq_ignore_ascii_case(name.as_str()))
}

/// The names a `Connection` header lists: hop-by-hop too.
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The client's headers as they go to the upstream.
pub fn request_headers(from_client: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(from_client);
    let mut out = HeaderMap::with_capacity(from_client.len());
    for (name, value) in from_client {
        if is_hop_by_hop(name, &listed)
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            || name == header::ACCEPT_ENCODING
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// The upstream's headers as they go to the client.
pub fn response_headers(from_upstream: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(from_upstream);
    let mut out = HeaderMap::with_capacity(from_upstream.len());
    for (name, value) in from_upstream {
        if is_hop_by_hop(name, &listed) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Sends one request to the upstream; the response body is read later, as a stream.
pub async fn send(
    client: &reqwest::Client,
    url: &reqwest::Url,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut request = client.request(method.clone(), url.clone()).headers(headers);
    if method == Method::POST || !body.is_empty() {
        request = request.body(body);
    }
    request.send().await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn mcp_headers_pass_and_hop_by_hop_headers_do_not() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("mcp-session-id", "abc"),
            ("mcp-protocol-version", "2025-06-18"),
            ("last-event-id", "7"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
            ("mcp-param-region", "eu"),
            ("accept", "application/json, text/event-stream"),
            ("authorization", "Bearer t"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("host", "proxy:8080"),
            ("content-length", "12"),
            ("accept-encoding", "gzip"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        let out = request_headers(&h);
        for kept in [
            "mcp-session-id",
            "mcp-protocol-version",
            "last-event-id",
            "mcp-method",
            "mcp-name",
            "mcp-param-region",
            "accept",
            "authorization",
        ] {
            assert_eq!(out.get(kept), h.get(kept), "{kept}");
        }
        for dropped in [
            "connection",
            "x-private",
            "keep-alive",
            "host",
            "content-length",
            "accept-encoding",
        ] {
            assert!(out.get(dropped).is_none(), "{dropped}");
        }
    }
}
