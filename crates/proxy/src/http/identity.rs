//! Who the caller is: a verified bearer JWT, or a header set by a trusted gateway; and where
//! the call came from: the peer address, or `X-Forwarded-For` when the peer is a trusted proxy.
//!
//! Claims are read only from a token whose signature, expiry, `nbf` (when it has one) and,
//! when configured, issuer and audience checked out: an unverified `sub` is never recorded as
//! the actor. A configured issuer or audience must be in the token, not merely not contradict
//! it; and where tokens are required, one must name its subject.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use axum::http::HeaderMap;
use ipnet::IpNet;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcp_audit_core::Actor;
use serde_json::{Map, Value};

/// Why an identity configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a usable {what}: {reason}")]
    BadKey {
        path: String,
        what: &'static str,
        reason: String,
    },
    #[error("`{0}` is neither an IP address nor a CIDR block")]
    BadProxy(String),
}

/// The keys a bearer token may be signed with.
pub enum JwtKeys {
    /// HS256 with a shared secret.
    Hs256(DecodingKey),
    /// One RS256 or ES256 public key (PEM).
    Public(Algorithm, DecodingKey),
    /// A JWKS document: the token's `kid` picks the key.
    Jwks(JwkSet),
}

impl JwtKeys {
    /// The HS256 secret in a file (surrounding whitespace is not part of it).
    pub fn hs256_secret_file(path: &Path) -> Result<JwtKeys, IdentityError> {
        let secret = read(path)?;
        let secret = secret.trim_ascii();
        if secret.is_empty() {
            return Err(bad(path, "HS256 secret", "the file is empty"));
        }
        Ok(JwtKeys::Hs256(DecodingKey::from_secret(secret)))
    }

    /// An RSA (RS256) or EC P-256 (ES256) public key in PEM form.
    pub fn public_key_pem(path: &Path) -> Result<JwtKeys, IdentityError> {
        let pem = read(path)?;
        if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
            return Ok(JwtKeys::Public(Algorithm::RS256, key));
        }
        DecodingKey::from_ec_pem(&pem)
            .map(|key| JwtKeys::Public(Algorithm::ES256, key))
            .map_err(|e| bad(path, "RSA or EC public key (PEM)", &e.to_string()))
    }

    /// A JWKS file (`{"keys": [...]}`).
    pub fn jwks_file(path: &Path) -> Result<JwtKeys, IdentityError> {
        let text = read(path)?;
        let set: JwkSet = serde_json::from_slice(&text)
            .map_err(|e| bad(path, "JWKS document", &e.to_string()))?;
        if set.keys.is_empty() {
            return Err(bad(path, "JWKS document", "it has no keys"));
        }
        Ok(JwtKeys::Jwks(set))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, IdentityError> {
    std::fs::read(path).map_err(|source| IdentityError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn bad(path: &Path, what: &'static str, reason: &str) -> IdentityError {
    IdentityError::BadKey {
        path: path.display().to_string(),
        what,
        reason: reason.to_string(),
    }
}

/// How far, in seconds, a token's `exp` may lie in the past and its `nbf` in the future.
const LEEWAY_SECS: u64 = 30;

/// How callers are identified.
#[derive(Default)]
pub struct IdentityConfig {
    pub jwt: Option<JwtKeys>,
    /// Answer 401 to a request without a valid token.
    pub jwt_required: bool,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The claim that names the caller's team (`team` by default in the CLI).
    pub team_claim: String,
    /// A header that a trusted gateway sets to the authenticated user's id.
    pub identity_header: Option<String>,
    /// Peers whose `X-Forwarded-For` (and identity header) are believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// Parses `--trusted-proxy` values: an address or a CIDR block.
pub fn parse_trusted_proxy(text: &str) -> Result<IpNet, IdentityError> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| IdentityError::BadProxy(text.to_string()))
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Allowed(Actor),
    /// Verification is required and failed: answer 401 and record `denied`.
    Denied {
        actor: Actor,
        reason: String,
    },
}

/// The `auth_method` of a caller that presented no credentials.
pub const ANONYMOUS: &str = "anonymous";

/// The `auth_method` of a caller whose bearer token failed verification (refused under
/// `--jwt-required`, else let through with no user).
pub const INVALID_JWT: &str = "invalid_jwt";

impl IdentityConfig {
    /// Who sent this request, from `peer` and its headers.
    pub fn identify(&self, peer: SocketAddr, headers: &HeaderMap) -> Verdict {
        let trusted_peer = self.is_trusted(peer.ip());
        let mut actor = Actor {
            client_ip: Some(self.client_ip(peer.ip(), trusted_peer, headers).to_string()),
            user_agent: header(headers, "user-agent").map(str::to_string),
            ..Actor::default()
        };
        if let Some(keys) = &self.jwt {
            match bearer(headers) {
                Some(token) => match self.verify(keys, token) {
                    Ok(claims) => {
                        self.fill_from_claims(&mut actor, &claims);
                        actor.auth_method = Some("jwt".into());
                        if self.jwt_required && actor.user_id.is_none() {
                            // A token that names nobody does not say who acted.
                            return Verdict::Denied {
                                actor,
                                reason: "the bearer token names no subject (`sub`)".into(),
                            };
                        }
                        return Verdict::Allowed(actor);
                    }
                    Err(reason) => {
                        // What was presented, whether it is then refused or let through.
                        actor.auth_method = Some(INVALID_JWT.into());
                        if self.jwt_required {
                            return Verdict::Denied {
                                actor,
                                reason: format!("invalid bearer token: {reason}"),
                            };
                        }
                        return Verdict::Allowed(actor);
                    }
                },
                None if self.jwt_required => {
                    actor.auth_method = Some(ANONYMOUS.into());
                    return Verdict::Denied {
                        actor,
                        reason: "no bearer token".into(),
                    };
                }
                None => {}
            }
        }
        if let Some(name) = &self.identity_header {
            // From anyone when no proxy is configured as trusted, else only from those.
            if (trusted_peer || self.trusted_proxies.is_empty())
                && let Some(user) = header(headers, name).filter(|u| !u.is_empty())
            {
                actor.user_id = Some(user.to_string());
                actor.auth_method = Some("header".into());
            }
        }
        // A caller that presented nothing is labelled so, not left blank like a field nobody
        // filled: "who did this" has the answer "nobody said".
        actor.auth_method.get_or_insert_with(|| ANONYMOUS.into());
        Verdict::Allowed(actor)
    }

    /// Why this configuration is unsafe to run, if it is: an identity header believed from
    /// any peer lets every client that reaches the proxy name itself anyone.
    pub fn warning(&self) -> Option<String> {
        let name = self.identity_header.as_deref()?;
        self.trusted_proxies.is_empty().then(|| {
            format!(
                "the identity header `{name}` is believed from every peer, because no \
                 --trusted-proxy is given: any client that can reach the proxy can claim to be \
                 anyone. Name the gateway that sets it with --trusted-proxy"
            )
        })
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The peer, or when the peer is a trusted proxy, the right-most address of
    /// `X-Forwarded-For` that is not itself a trusted proxy.
    fn client_ip(&self, peer: IpAddr, trusted_peer: bool, headers: &HeaderMap) -> IpAddr {
        if !trusted_peer {
            return canonical(peer);
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .collect();
        let mut client = canonical(peer);
        for hop in hops.into_iter().rev() {
            client = canonical(hop);
            if !self.is_trusted(client) {
                break;
            }
        }
        client
    }

    /// The claims of `token` when it verifies against the configured keys, issuer and
    /// audience (the same checks as [`IdentityConfig::identify`]); else why not. For other
    /// servers that take the same bearers (the audit console), so that both accept exactly
    /// the same tokens.
    pub fn verify_claims(&self, token: &str) -> Result<Map<String, Value>, String> {
        let keys = self.jwt.as_ref().ok_or("no JWT keys are configured")?;
        self.verify(keys, token)
    }

    fn verify(&self, keys: &JwtKeys, token: &str) -> Result<Map<String, Value>, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let (algorithm, key) = match keys {
            JwtKeys::Hs256(key) => (Algorithm::HS256, key.clone()),
            JwtKeys::Public(algorithm, key) => (*algorithm, key.clone()),
            JwtKeys::Jwks(set) => {
                let jwk = match &header.kid {
                    Some(kid) => set.find(kid),
                    None if set.keys.len() == 1 => set.keys.first(),
                    None => None,
                }
                .ok_or("no key in the JWKS matches the token's kid")?;
                let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
                (header.alg, key)
            }
        };
        if !matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::RS256 | Algorithm::ES256
        ) {
            return Err(format!("algorithm {algorithm:?} is not accepted"));
        }
        let mut validation = Validation::new(algorithm);
        // Clocks differ a little; the same allowance both ways, for `exp` and `nbf`.
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        // A configured issuer or audience is a requirement: a token without the claim at
        // all must not pass where one with the wrong value would not.
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }

    fn fill_from_claims(&self, actor: &mut Actor, claims: &Map<String, Value>) {
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => {
                let names: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                (!names.is_empty()).then(|| names.join(","))
            }
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        actor.user_id = claims.get("sub").and_then(text);
        actor.email = claims.get("email").and_then(text);
        actor.team = claims.get(&self.team_claim).and_then(text);
    }
}

/// IPv4-mapped IPv6 addresses compare as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = header(headers, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const SECRET: &[u8] = b"a test secret that is long enough";

    fn config(required: bool) -> IdentityConfig {
        IdentityConfig {
            jwt: Some(JwtKeys::Hs256(DecodingKey::from_secret(SECRET))),
            jwt_required: required,
            team_claim: "org".into(),
            ..IdentityConfig::default()
        }
    }

    fn token(exp_from_now: i64) -> String {
        let exp = jiff_now() + exp_from_now;
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": "u-42", "email": "ann@example.org", "org": ["red", "blue"], "exp": exp}),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    fn jiff_now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const PEER: &str = "10.0.0.9:5000";

    #[test]
    fn a_valid_token_names_the_caller_with_sub_email_and_team() {
        let auth = format!("Bearer {}", token(600));
        let v = config(true).identify(
            PEER.parse().unwrap(),
            &headers(&[("authorization", &auth), ("user-agent", "ua/1")]),
        );
        let Verdict::Allowed(actor) = v else {
            panic!("{v:?}")
        };
        assert_eq!(actor.user_id.as_deref(), Some("u-42"));
        assert_eq!(actor.email.as_deref(), Some("ann@example.org"));
        assert_eq!(actor.team.as_deref(), Some("red,blue"));
        assert_eq!(actor.auth_method.as_deref(), Some("jwt"));
        assert_eq!(actor.client_ip.as_deref(), Some("10.0.0.9"));
        assert_eq!(actor.user_agent.as_deref(), Some("ua/1"));
    }

    #[test]
    fn expired_forged_or_missing_tokens_are_denied_when_required() {
        let expired = format!("Bearer {}", token(-3600));
        let forged = format!(
            "Bearer {}",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &json!({"sub": "mallory", "exp": jiff_now() + 600}),
                &EncodingKey::from_secret(b"another secret"),
            )
            .unwrap()
        );
        for auth in [expired.as_str(), forged.as_str(), "Bearer not.a.jwt"] {
            let v =
                config(true).identify(PEER.parse().unwrap(), &headers(&[("authorization", auth)]));
            assert!(
                matches!(&v, Verdict::Denied { actor, .. } if actor.user_id.is_none() && actor.auth_method.as_deref() == Some(INVALID_JWT)),
                "{auth}: {v:?}"
            );
        }
        let v = config(true).identify(PEER.parse().unwrap(), &HeaderMap::new());
        assert!(
            matches!(v, Verdict::Denied { ref reason, ref actor } if reason == "no bearer token" && actor.auth_method.as_deref() == Some(ANONYMOUS))
        );
        let v = config(false).identify(PEER.parse().unwrap(), &HeaderMap::new());
        assert!(
            matches!(v, Verdict::Allowed(ref a) if a.auth_method.as_deref() == Some(ANONYMOUS) && a.user_id.is_none())
        );
        // Not required: forwarded, but marked.
        let v = config(false).identify(
            PEER.parse().unwrap(),
            &headers(&[("authorization", &expired)]),
        );
        assert!(
            matches!(v, Verdict::Allowed(ref a) if a.auth_method.as_deref() == Some("invalid_jwt") && a.user_id.is_none())
        );
    }

    fn signed_claims(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    fn verdict_on(config: &IdentityConfig, claims: serde_json::Value) -> Verdict {
        let auth = format!("Bearer {}", signed_claims(claims));
        config.identify(PEER.parse().unwrap(), &headers(&[("authorization", &auth)]))
    }

    #[test]
    fn a_configured_audience_or_issuer_is_required_not_only_checked_when_present() {
        let exp = jiff_now() + 600;
        let config = IdentityConfig {
            audience: Some("mcp-audit".into()),
            issuer: Some("https://idp.example".into()),
            ..config(true)
        };
        let full =
            json!({"sub": "u", "aud": "mcp-audit", "iss": "https://idp.example", "exp": exp});
        assert!(matches!(verdict_on(&config, full), Verdict::Allowed(_)));
        for (missing, claims) in [
            (
                "aud",
                json!({"sub": "u", "iss": "https://idp.example", "exp": exp}),
            ),
            ("iss", json!({"sub": "u", "aud": "mcp-audit", "exp": exp})),
        ] {
            let v = verdict_on(&config, claims);
            assert!(
                matches!(&v, Verdict::Denied { reason, actor } if reason.contains(missing) && actor.user_id.is_none()),
                "without {missing}: {v:?}"
            );
        }
    }

    #[test]
    fn a_token_not_valid_yet_is_denied_beyond_the_leeway_and_accepted_within_it() {
        let now = jiff_now();
        let leeway = LEEWAY_SECS as i64;
        let config = config(true);
        let early = verdict_on(
            &config,
            json!({"sub": "u", "nbf": now + 3600, "exp": now + 7200}),
        );
        assert!(
            matches!(&early, Verdict::Denied { reason, .. } if reason.contains("ImmatureSignature")),
            "{early:?}"
        );
        let within = verdict_on(
            &config,
            json!({"sub": "u", "nbf": now + leeway / 2, "exp": now + 7200}),
        );
        assert!(matches!(within, Verdict::Allowed(_)), "{within:?}");
    }

    #[test]
    fn a_token_without_a_subject_is_denied_when_tokens_are_required() {
        let exp = jiff_now() + 600;
        let v = verdict_on(
            &config(true),
            json!({"email": "ann@example.org", "exp": exp}),
        );
        assert!(
            matches!(&v, Verdict::Denied { reason, actor } if reason.contains("sub") && actor.user_id.is_none()),
            "{v:?}"
        );
        // Not required: forwarded, with the verified claims it has.
        let v = verdict_on(
            &config(false),
            json!({"email": "ann@example.org", "exp": exp}),
        );
        assert!(
            matches!(&v, Verdict::Allowed(a) if a.user_id.is_none() && a.email.as_deref() == Some("ann@example.org")),
            "{v:?}"
        );
    }

    #[test]
    fn an_identity_header_without_trusted_proxies_is_warned_about() {
        let open = IdentityConfig {
            identity_header: Some("x-user".into()),
            ..IdentityConfig::default()
        };
        assert!(open.warning().is_some_and(|w| w.contains("x-user")));
        let guarded = IdentityConfig {
            trusted_proxies: vec![parse_trusted_proxy("10.0.0.0/8").unwrap()],
            ..open
        };
        assert_eq!(guarded.warning(), None);
        assert_eq!(IdentityConfig::default().warning(), None);
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut c = IdentityConfig {
            trusted_proxies: vec![parse_trusted_proxy("10.0.0.0/8").unwrap()],
            identity_header: Some("x-user".into()),
            ..IdentityConfig::default()
        };
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.7, 198.51.100.2"),
            ("x-forwarded-for", "10.1.1.1"),
            ("x-user", "bob"),
        ]);
        let Verdict::Allowed(a) = c.identify("10.0.0.9:1".parse().unwrap(), &h) else {
            panic!()
        };
        assert_eq!(a.client_ip.as_deref(), Some("198.51.100.2"));
        assert_eq!(a.user_id.as_deref(), Some("bob"));
        let Verdict::Allowed(a) = c.identify("192.0.2.1:1".parse().unwrap(), &h) else {
            panic!()
        };
        assert_eq!(a.client_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(a.user_id, None, "an untrusted peer can not name the user");
        // An IPv4 proxy seen through an IPv4-mapped IPv6 socket is still that proxy.
        let Verdict::Allowed(a) = c.identify("[::ffff:10.0.0.9]:1".parse().unwrap(), &h) else {
            panic!()
        };
        assert_eq!(a.client_ip.as_deref(), Some("198.51.100.2"));
        c.trusted_proxies = vec![parse_trusted_proxy("::1").unwrap()];
        let h6 = headers(&[("x-forwarded-for", "2001:db8::7")]);
        let Verdict::Allowed(a) = c.identify("[::1]:1".parse().unwrap(), &h6) else {
            panic!()
        };
        assert_eq!(a.client_ip.as_deref(), Some("2001:db8::7"));
        assert!(parse_trusted_proxy("nope").is_err());
    }

    fn key_file(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/keys")
            .join(name)
    }

    fn signed(algorithm: Algorithm, kid: Option<&str>, key: &EncodingKey) -> String {
        let mut header = Header::new(algorithm);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(
            &header,
            &json!({"sub": "svc-9", "team": "ops", "exp": jiff_now() + 600}),
            key,
        )
        .unwrap()
    }

    fn verdict(keys: JwtKeys, token: &str) -> Verdict {
        let config = IdentityConfig {
            jwt: Some(keys),
            jwt_required: true,
            team_claim: "team".into(),
            ..IdentityConfig::default()
        };
        config.identify(
            PEER.parse().unwrap(),
            &headers(&[("authorization", &format!("Bearer {token}"))]),
        )
    }

    fn user(v: &Verdict) -> Option<&str> {
        match v {
            Verdict::Allowed(a) => a.user_id.as_deref(),
            Verdict::Denied { .. } => None,
        }
    }

    #[test]
    fn es256_and_rs256_public_keys_and_a_jwks_file_verify_their_tokens() {
        let ec =
            EncodingKey::from_ec_pem(&std::fs::read(key_file("ec_private.pem")).unwrap()).unwrap();
        let rsa = EncodingKey::from_rsa_pem(&std::fs::read(key_file("rsa_private.pem")).unwrap())
            .unwrap();
        let es = signed(Algorithm::ES256, Some("ec-1"), &ec);
        let rs = signed(Algorithm::RS256, None, &rsa);
        let ec_pem = || JwtKeys::public_key_pem(&key_file("ec_public.pem")).unwrap();
        let rsa_pem = || JwtKeys::public_key_pem(&key_file("rsa_public.pem")).unwrap();
        let jwks = || JwtKeys::jwks_file(&key_file("jwks.json")).unwrap();
        assert_eq!(user(&verdict(ec_pem(), &es)), Some("svc-9"));
        assert_eq!(user(&verdict(rsa_pem(), &rs)), Some("svc-9"));
        assert_eq!(user(&verdict(jwks(), &es)), Some("svc-9"));
        // The wrong key, an unknown kid, and an RS256 key's PEM used as an HS256 secret (the
        // algorithm confusion attack) are all denied.
        assert!(matches!(verdict(ec_pem(), &rs), Verdict::Denied { .. }));
        assert!(matches!(verdict(jwks(), &rs), Verdict::Denied { .. }));
        let confused = signed(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(&std::fs::read(key_file("rsa_public.pem")).unwrap()),
        );
        assert!(matches!(
            verdict(rsa_pem(), &confused),
            Verdict::Denied { .. }
        ));
    }

    #[test]
    fn unusable_key_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(matches!(
            JwtKeys::hs256_secret_file(&empty),
            Err(IdentityError::BadKey { .. })
        ));
        assert!(matches!(
            JwtKeys::public_key_pem(&empty),
            Err(IdentityError::BadKey { .. })
        ));
        assert!(matches!(
            JwtKeys::jwks_file(&empty),
            Err(IdentityError::BadKey { .. })
        ));
        assert!(matches!(
            JwtKeys::jwks_file(&dir.path().join("missing")),
            Err(IdentityError::Read { .. })
        ));
    }
}
