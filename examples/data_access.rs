//! Access to personal data (the gateway audit trail's `log_data_access`): who read or exported
//! whose data, for what purpose, on which legal basis; then answering the person's request to
//! see those records (GDPR Art. 15) and to erase them (Art. 17).
//!
//! The data subject is a column, so "every access to this person's data" is one filter.
//! Erasure deletes the personal half of each record (the payload, e-mail, IP address) and keeps
//! the hashed metadata, so the log still verifies: the entries read as *redacted*, not as
//! tampered.
//!
//! `cargo run --example data_access`

use std::error::Error;

use mcp_audit_core::{Action, AuditEvent, Classification, ComplianceEvent, LegalBasis, RiskLevel};
use mcp_audit_store::{
    Filter, Query, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore,
    erasure::{self, ErasureRequest},
    integrity,
};
use serde_json::json;

const SUBJECT: &str = "customer-1138";

pub fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.db");
    let recorder = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default())?,
        RecorderConfig::default(),
    )?;

    // A support agent reads the customer's record to answer a ticket.
    recorder.record(
        AuditEvent::admin(Action::Read, "customer", SUBJECT)
            .user("frank")
            .email("frank@example.com")
            .client_ip("203.0.113.9")
            .classification(Classification::Confidential)
            .data_subject(SUBJECT)
            .purpose("customer support")
            .legal_basis(LegalBasis::Contract)
            .gdpr(true)
            .tag("pii")
            .output(json!({"name": "Ada Example", "plan": "pro"}))
            .build()?,
    )?;
    // An export of the same record to a third party is a compliance event of its own.
    recorder.record(
        AuditEvent::admin(Action::Export, "customer", SUBJECT)
            .user("grace")
            .classification(Classification::Restricted)
            .data_subject(SUBJECT)
            .purpose("billing migration")
            .legal_basis(LegalBasis::LegitimateInterests)
            .gdpr(true)
            .compliance_event(ComplianceEvent {
                framework: "GDPR".into(),
                event_type: "data_export".into(),
                risk_level: RiskLevel::High,
                details: Some(json!({"recipient": "billing provider"})),
                mitigation: vec!["data processing agreement in place".into()],
            })
            .output(json!({"name": "Ada Example", "iban": "DE89 3704 0044 0532 0130 00"}))
            .build()?,
    )?;
    // Someone else's data, which the subject's request must not return.
    recorder.record(
        AuditEvent::admin(Action::Read, "customer", "customer-2187")
            .user("frank")
            .data_subject("customer-2187")
            .build()?,
    )?;
    recorder.shutdown()?;

    // Art. 15: every access to the subject's data.
    let subject = Filter {
        data_subject_id: Some(SUBJECT.into()),
        ..Filter::default()
    };
    let mut store = SqliteStore::open(&path, SqliteOptions::default())?;
    let accesses = store.query(&Query {
        filter: subject.clone(),
        ..Query::default()
    })?;
    for stored in &accesses.events {
        let event = &stored.event;
        println!(
            "{} by {:?} for {:?} ({:?}), review: {:?}",
            event.operation,
            event.actor.user_id,
            event.compliance.purpose,
            event.compliance.legal_basis,
            event.compliance.requires_review
        );
    }
    assert_eq!(accesses.events.len(), 2);

    // Art. 17: erase the personal half of each of those records (and of every other record of
    // the same call). Each erasure is itself recorded in the log first, who and why, so that a
    // payload missing without such a record is tampering, not an erasure.
    let eraser = Recorder::start(
        SqliteStore::open(&path, SqliteOptions::default())?,
        RecorderConfig::default(),
    )?;
    let request = ErasureRequest {
        actor: "dpo".into(),
        auth_method: "example".into(),
        reason: "art. 17 request of subject-42".into(),
    };
    for stored in &accesses.events {
        let erased = erasure::erase_call(&mut store, &eraser, stored.event.id, &request)?;
        assert!(erased.records.iter().all(|r| r.payload_deleted));
    }
    eraser.shutdown()?;
    let after = store.query(&Query {
        filter: subject,
        ..Query::default()
    })?;
    assert!(after.events.iter().all(|stored| stored.redacted));
    assert!(
        after
            .events
            .iter()
            .all(|stored| stored.event.payload.is_empty() && stored.event.actor.email.is_none())
    );

    // The log still holds together: nothing is reported as tampered.
    let report = integrity::verify(&mut store, None, &[], &mut |_| {})?;
    println!(
        "verify: {} entries, {} redacted, findings {:?}",
        report.entries, report.redacted, report.findings
    );
    assert!(report.is_ok());
    // Three accesses and the two erasure events; two payloads erased, each on record.
    assert_eq!((report.entries, report.redacted), (5, 2));
    Ok(())
}
