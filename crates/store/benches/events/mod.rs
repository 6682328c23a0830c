//! The benchmarks' realistic events, shared by the SQLite and PostgreSQL benchmarks so that
//! their figures compare.

#![allow(dead_code)]

use mcp_audit_core::{AuditEvent, DataSource, FlowDirection, LegalBasis};
use serde_json::json;

pub const USERS: u64 = 1_000;
pub const TOOLS: u64 = 50;
pub const SESSIONS: u64 = 10_000;

/// How many data subjects the events name (`SUBJECTS`, default 100,000). The default is the
/// worst case for the pseudonym mapping: over a run of 200,000 events most events name a
/// subject not seen before, so most events add a mapping row. A smaller number (say 1,000, as
/// many as the users) is the mix of a service whose calls concern a known set of people.
pub static SUBJECTS: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
    std::env::var("SUBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &u64| *n > 0)
        .unwrap_or(100_000)
});

/// A cheap deterministic spread of keys (splitmix64), so runs are comparable.
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A realistic tool execution: about 1 KB of JSON once encoded, two data sources.
pub fn event(i: u64) -> AuditEvent {
    let k = mix(i);
    AuditEvent::tool_execution(format!("tool_{}", k % TOOLS))
        .user(format!("user-{}", (k >> 8) % USERS))
        .session(format!("session-{}", (k >> 20) % SESSIONS))
        .server("crm-server")
        .input(json!({
            "query": "customers in region EMEA with open tickets older than 30 days",
            "limit": 50,
            "fields": ["id", "name", "email", "region", "tickets", "owner"],
            "filters": {"region": "EMEA", "status": "open", "min_age_days": 30, "request": i},
        }))
        .output(json!({
            "content": [{"type": "text", "text": "Found 12 customers: ACME GmbH (3 tickets), Globex SARL (2 tickets), Initech Ltd (4 tickets), Umbrella BV (1 ticket), Hooli AB (2 tickets) and 7 more; the oldest ticket is 94 days old and belongs to Initech Ltd."}],
            "structuredContent": {"count": 12, "oldest_days": 94, "truncated": true},
            "isError": false,
        }))
        .duration_us(500 + k % 20_000)
        .data_source(DataSource::input("postgres://crm/customers").source_type("database").identifier("customers"))
        .data_source(
            DataSource::input("https://tickets.example.com/api/v2/tickets")
                .source_type("api")
                .direction(FlowDirection::Input)
                .transformation("aggregate"),
        )
        .purpose("customer support")
        .legal_basis(LegalBasis::LegitimateInterests)
        .gdpr(true)
        .data_subject(format!("subject-{}", k % *SUBJECTS))
        .retention("1y")
        .build()
        .expect("a valid event")
}

/// The 200-byte text the seed's `read_file` benchmark event returns.
pub const SEED_RESULT: &str = "Quarterly report: revenue grew 12% over the previous quarter, driven by the EMEA region; \
operating costs fell 3%. Three customer escalations remain open and are tracked in the support queue. See CRM4.";

/// The seed logger's own benchmark event (MockLoop's `log_tool_execution`): `read_file` of one
/// file, a result of 200 bytes, that file as its one data source, GDPR tags and a purpose, by
/// the logger's session and user. `seed_bytes.py` writes the same with the seed's package.
pub fn seed_event(i: u64) -> AuditEvent {
    let k = mix(i);
    let path = format!("/data/documents/report_{}.txt", k % 10_000);
    AuditEvent::tool_execution("read_file")
        .user(format!("user-{}", (k >> 8) % USERS))
        .session(format!("session-{}", (k >> 20) % SESSIONS))
        .input(json!({"path": path}))
        .output(json!({"content": SEED_RESULT}))
        .duration_us(1_000 + k % 20_000)
        .data_source(DataSource::input(format!("file://{path}")))
        .tag("gdpr")
        .tag("file_access")
        .purpose("document_review")
        .legal_basis(LegalBasis::LegitimateInterests)
        .gdpr(true)
        .build()
        .expect("a valid event")
}
