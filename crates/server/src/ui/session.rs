//! Browser sessions of the web UI: a login trades a console token for a random session id in
//! an `HttpOnly`, `SameSite=Strict` cookie, and a per-session CSRF token that every form
//! carries in a hidden field.
//!
//! The session keeps the token's secret, not its role: each request checks the secret again
//! against the token table, so a revoked token ends its browser sessions on the next request,
//! as it ends its API use. Sessions live in memory only; a restart of `serve` logs everyone
//! out, which is the safe direction.
//!
//! The cookie is `Secure` when `serve` terminates TLS itself (`--tls-cert`); over plain HTTP
//! (127.0.0.1, or behind a TLS-terminating proxy) a `Secure` cookie would never come back, so
//! it is left off there.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use rand::RngCore;
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "mcp_audit_session";
/// How long a session lasts from its login (a working day, then log in again).
const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// The most sessions kept at once; past it the oldest is dropped, so that a flood of logins
/// cannot grow memory without bound.
const MAX_SESSIONS: usize = 10_000;

/// One logged-in browser.
#[derive(Clone)]
pub struct Session {
    /// The console token's secret, checked again on every request.
    pub secret: String,
    /// The CSRF token of this session's forms.
    pub csrf: String,
    started: Instant,
}

/// Every live session, by id.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Sessions {
    /// Starts a session for `secret` (already checked); returns its id.
    pub fn start(&self, secret: String) -> String {
        let id = random_hex();
        let session = Session {
            secret,
            csrf: random_hex(),
            started: Instant::now(),
        };
        if let Ok(mut live) = self.live.lock() {
            live.retain(|_, s| s.started.elapsed() < LIFETIME);
            if live.len() >= MAX_SESSIONS
                && let Some(oldest) = live
                    .iter()
                    .min_by_key(|(_, s)| s.started)
                    .map(|(k, _)| k.clone())
            {
                live.remove(&oldest);
            }
            live.insert(id.clone(), session);
        }
        id
    }

    /// The session the request's cookie names, if it is live.
    pub fn of(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = cookie(headers)?;
        let live = self.live.lock().ok()?;
        live.get(&id)
            .filter(|s| s.started.elapsed() < LIFETIME)
            .map(|s| (id.clone(), s.clone()))
    }

    pub fn end(&self, id: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(id);
        }
    }
}

/// The session id in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// Whether `given` is the session's CSRF token (compared in constant time).
pub fn csrf_matches(session: &Session, given: Option<&str>) -> bool {
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(session.csrf.as_bytes())))
}

/// The `Set-Cookie` value that starts a session; `secure` under TLS.
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        LIFETIME.as_secs(),
        secure_attribute(secure)
    )
}

/// The `Set-Cookie` value that ends one.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        secure_attribute(secure)
    )
}

fn secure_attribute(secure: bool) -> &'static str {
    if secure { "; Secure" } else { "" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_and_gone_after_its_end() {
        let sessions = Sessions::default();
        let id = sessions.start("mcpa_x".into());
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("other=1; {COOKIE}={id}").parse().unwrap(),
        );
        let (found, session) = sessions.of(&headers).unwrap();
        assert_eq!(found, id);
        assert_eq!(session.secret, "mcpa_x");
        assert!(csrf_matches(&session, Some(&session.csrf.clone())));
        assert!(!csrf_matches(&session, Some("forged")));
        assert!(!csrf_matches(&session, None));
        sessions.end(&id);
        assert!(sessions.of(&headers).is_none());
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site_strict_and_secure_only_under_tls() {
        for secure in [false, true] {
            for cookie in [set_cookie("abc", secure), clear_cookie(secure)] {
                assert!(cookie.contains("HttpOnly"));
                assert!(cookie.contains("SameSite=Strict"));
                assert_eq!(cookie.ends_with("; Secure"), secure, "{cookie}");
            }
        }
    }
}
