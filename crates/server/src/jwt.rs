//! OIDC/JWT bearers as console callers: a verified token's `sub` is the caller, one of its
//! claims says the role.
//!
//! Verification is the HTTP proxy's (`mcp_audit_proxy::http::IdentityConfig`: HS256 secret,
//! RS256/ES256 PEM key or JWKS file; signature, `exp`, `nbf`, and the configured issuer and
//! audience required), so the console and the proxy accept exactly the same tokens. What is
//! the console's own is the role: the value of one claim (`mcp_audit_role` unless configured),
//! a role name or a value mapped to one (an identity provider's group names). A claim that is
//! a list (groups) gives the highest reading role any of its values names; `writer` (the
//! ingest API's grant) is no rung of that ladder, so a subject whose list names both reads
//! with its reading role and writes with `writer`, each where the endpoint asks for it.
//!
//! A token that fails verification or names no subject is a 401: it does not say who is
//! asking. A verified token without a known role is a 403: the caller is known, and has no
//! rights here.

use axum::http::StatusCode;
use jiff::Timestamp;
use mcp_audit_proxy::http::IdentityConfig;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::tokens::{Grant, TokenInfo};

/// The claim read for the role unless another is configured.
pub const DEFAULT_ROLE_CLAIM: &str = "mcp_audit_role";

/// How the console takes JWT bearers.
pub struct JwtRoles {
    /// The keys, issuer and audience; its other fields (team claim, headers, proxies) play no
    /// part here.
    pub identity: IdentityConfig,
    /// The claim whose value names the role.
    pub role_claim: String,
    /// Claim values that stand for a role (`admins=admin`), beside the role names themselves.
    pub role_map: Vec<(String, Grant)>,
}

/// Reads a `CLAIMVALUE=ROLE` mapping (`--jwt-role-map`).
pub fn parse_role_mapping(text: &str) -> Result<(String, Grant), String> {
    let (value, role) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("`{text}` is not CLAIMVALUE=ROLE"))?;
    if value.is_empty() {
        return Err(format!("`{text}` names no claim value before `=`"));
    }
    Ok((value.to_string(), role.trim().parse::<Grant>()?))
}

impl JwtRoles {
    /// The caller that `token` names, with the grant it holds for `need` (its highest reading
    /// role for a read, `writer` for a write, else whatever it holds, which the caller's check
    /// then refuses); a 401 or 403 [`ApiError`] otherwise.
    pub(crate) fn authenticate(&self, token: &str, need: Grant) -> Result<TokenInfo, ApiError> {
        let claims = self.identity.verify_claims(token).map_err(|reason| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!("invalid bearer token: {reason}"),
            )
        })?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the bearer token names no subject (`sub`)",
                )
            })?;
        let role = self
            .grant_of(&claims, need)
            .map_err(|message| ApiError::new(StatusCode::FORBIDDEN, "forbidden", message))?;
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .map(str::to_string);
        let issued = claims
            .get("iat")
            .and_then(Value::as_i64)
            .and_then(|t| Timestamp::from_second(t).ok())
            .unwrap_or_else(Timestamp::now);
        Ok(TokenInfo::from_jwt(subject, issuer, role, issued))
    }

    /// The grant the role claim gives for `need`, directly or through the map.
    fn grant_of(&self, claims: &Map<String, Value>, need: Grant) -> Result<Grant, String> {
        let grants = self.grants_of(claims)?;
        let highest_read = grants.iter().filter_map(|g| g.reads()).max();
        let writes = grants.contains(&Grant::Write);
        Ok(match (need, highest_read, writes) {
            (Grant::Write, _, true) => Grant::Write,
            (_, Some(role), _) => Grant::Read(role),
            _ => Grant::Write,
        })
    }

    /// The highest reading role the role claim names (for the read endpoints).
    #[cfg(test)]
    fn role_of(&self, claims: &Map<String, Value>) -> Result<crate::tokens::Role, String> {
        self.grant_of(claims, Grant::Read(crate::tokens::Role::Viewer))?
            .reads()
            .ok_or_else(|| "writer only".to_string())
    }

    /// Every grant the role claim names, directly or through the map (at least one).
    fn grants_of(&self, claims: &Map<String, Value>) -> Result<Vec<Grant>, String> {
        let claim = &self.role_claim;
        let values: Vec<&str> = match claims.get(claim) {
            None | Some(Value::Null) => {
                return Err(format!(
                    "the bearer token has no `{claim}` claim, so it has no role here"
                ));
            }
            Some(Value::String(value)) => vec![value.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(_) => return Err(format!("the `{claim}` claim is neither a text nor a list")),
        };
        let grants: Vec<Grant> = values
            .iter()
            .filter_map(|value| {
                value.parse::<Grant>().ok().or_else(|| {
                    self.role_map
                        .iter()
                        .find(|(mapped, _)| mapped == value)
                        .map(|(_, grant)| *grant)
                })
            })
            .collect();
        if grants.is_empty() {
            return Err(format!(
                "the `{claim}` claim ({}) names no role (viewer, reviewer, auditor, admin, \
                 writer) and no mapped value",
                values.join(", ")
            ));
        }
        Ok(grants)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tokens::Role;

    fn roles(map: &[(&str, Role)]) -> JwtRoles {
        JwtRoles {
            identity: IdentityConfig::default(),
            role_claim: "groups".into(),
            role_map: map
                .iter()
                .map(|(v, r)| (v.to_string(), Grant::Read(*r)))
                .collect(),
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        let Value::Object(map) = json!({ "sub": "ann", "groups": value }) else {
            unreachable!()
        };
        map
    }

    #[test]
    fn a_role_name_or_a_mapped_value_gives_the_role_and_a_list_its_highest() {
        let r = roles(&[("sec-team", Role::Auditor), ("staff", Role::Viewer)]);
        assert_eq!(r.role_of(&claims(json!("reviewer"))), Ok(Role::Reviewer));
        assert_eq!(r.role_of(&claims(json!("sec-team"))), Ok(Role::Auditor));
        assert_eq!(
            r.role_of(&claims(json!(["staff", "unknown", "sec-team"]))),
            Ok(Role::Auditor)
        );
    }

    #[test]
    fn no_claim_an_unknown_value_or_a_claim_of_another_shape_is_no_role() {
        let r = roles(&[("sec-team", Role::Auditor)]);
        let mut none = claims(json!("x"));
        none.remove("groups");
        assert!(r.role_of(&none).unwrap_err().contains("no `groups` claim"));
        assert!(
            r.role_of(&claims(json!("root")))
                .unwrap_err()
                .contains("root")
        );
        assert!(r.role_of(&claims(json!([]))).is_err());
        assert!(r.role_of(&claims(json!(7))).is_err());
        // Role names are matched exactly, as the map's values are.
        assert!(r.role_of(&claims(json!("Admin"))).is_err());
    }

    #[test]
    fn writer_is_granted_beside_a_reading_role_and_never_read_as_one() {
        let r = roles(&[]);
        let both = claims(json!(["viewer", "writer"]));
        let read = Grant::Read(Role::Viewer);
        assert_eq!(r.grant_of(&both, read), Ok(read));
        assert_eq!(r.grant_of(&both, Grant::Write), Ok(Grant::Write));
        let writer = claims(json!("writer"));
        // Asked for a read, a writer-only subject is a writer, which the read check refuses.
        assert_eq!(r.grant_of(&writer, read), Ok(Grant::Write));
        let viewer = claims(json!("viewer"));
        assert_eq!(r.grant_of(&viewer, Grant::Write), Ok(read));
    }

    #[test]
    fn role_mappings_are_read_as_value_equals_role() {
        assert_eq!(
            parse_role_mapping("cn=admins,ou=groups=admin"),
            Ok(("cn=admins,ou=groups".to_string(), Grant::Read(Role::Admin)))
        );
        assert_eq!(
            parse_role_mapping("ingesters=writer"),
            Ok(("ingesters".to_string(), Grant::Write))
        );
        assert!(parse_role_mapping("admins").is_err());
        assert!(parse_role_mapping("=admin").is_err());
        assert!(
            parse_role_mapping("admins=root")
                .unwrap_err()
                .contains("root")
        );
    }

    #[test]
    fn a_token_that_does_not_verify_is_refused_as_unauthorized() {
        let error = roles(&[])
            .authenticate("not.a.jwt", Grant::Read(Role::Viewer))
            .unwrap_err();
        assert_eq!(error.status, StatusCode::UNAUTHORIZED);
    }
}
