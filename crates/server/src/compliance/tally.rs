//! The figures of a report, folded from the store's read API in two passes: the window's
//! events (oldest first), then every review event (a review may be made long after the window
//! it reviews). Nothing here knows the backend.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use jiff::{Span, Timestamp};
use mcp_audit_core::{AuditEvent, EventKind};
use mcp_audit_store::hold::Holds;
use mcp_audit_store::{Filter, Query, Read, StoredEvent};
use serde::Serialize;

use super::admin::{AdminRecord, admin_record, cleanup_entries};
use super::model::*;
use crate::records::{EVENT_RESOURCE, REVIEW_OPERATION, Verdict};

/// Longest retention GDPR's storage limitation is taken to allow here, as the seed reporter
/// does: seven years.
const GDPR_MAX_RETENTION_DAYS: i64 = 2555;
/// Over this many events in the window, the PIA counts high-volume processing.
const HIGH_VOLUME: u64 = 10_000;

/// Builds the report of `options.kind` over `options`' window from `store`.
pub fn build(
    store: &mut (impl Read + ?Sized),
    options: ReportOptions,
) -> Result<Report, ReportError> {
    if let (Some(since), Some(until)) = (options.since, options.until)
        && until < since
    {
        return Err(ReportError::EmptyWindow { since, until });
    }
    let filter = Filter {
        since: options.since,
        until: options.until,
        ..Filter::default()
    };
    let mut tally = Tally::new(&options);
    store.for_each(&filter, &mut |stored| {
        tally.event(&stored);
        Ok(())
    })?;
    // Holds in force at the window's end: every hold placed before it, less releases.
    let mut holds_in_force: i64 = 0;
    store.for_each(
        &Filter {
            kinds: vec![EventKind::Admin],
            until: options.until,
            ..Filter::default()
        },
        &mut |stored| {
            match admin_record(&stored.event) {
                Some(AdminRecord::HoldPlaced) => holds_in_force += 1,
                Some(AdminRecord::HoldReleased) => holds_in_force -= 1,
                _ => {}
            }
            Ok(())
        },
    )?;
    let mut verdicts: HashMap<String, Option<Verdict>> = HashMap::new();
    store.for_each(
        &Filter {
            operation: Some(REVIEW_OPERATION.into()),
            resource_type: Some(EVENT_RESOURCE.into()),
            ..Filter::default()
        },
        &mut |review| {
            if let Some(id) = review.event.target.resource_id.clone() {
                // Oldest first: the last one read is the latest verdict.
                verdicts.insert(id, Verdict::from_tags(&review.event.compliance.tags));
            }
            Ok(())
        },
    )?;
    // Events kept by a hold in force now (a hold keeps events of any time, in any log).
    let holds = Holds::load(store)?;
    let held = holds.held_events(store, options.now, None)?.len() as u64;
    let mut options = options;
    if options.last_verify.is_none() {
        options.last_verify = newest_recorded_verify(store)?;
    }
    let mut report = tally.finish(options, verdicts, holds_in_force.max(0) as u64);
    report.retention.held = held;
    Ok(report)
}

/// The newest verify run the log records (`mcp-audit verify`, or the console's), for a report
/// that ran none of its own.
fn newest_recorded_verify(
    store: &mut (impl Read + ?Sized),
) -> Result<Option<VerifyStatus>, ReportError> {
    let page = store.query(&Query {
        filter: crate::verify::record_filter(),
        limit: 1,
        ..Query::default()
    })?;
    Ok(page
        .events
        .first()
        .and_then(crate::verify::from_record)
        .map(|run| VerifyStatus {
            at: run.finished,
            entries: run.logs.iter().map(|l| l.entries).sum(),
            checkpoints_verified: run.logs.iter().map(|l| l.checkpoints_verified).sum(),
            findings: run
                .logs
                .iter()
                .map(|l| l.findings.values().sum::<usize>() as u64)
                .sum(),
            ok: run.ok,
            signatures_checked: run.signatures_checked,
        }))
}

/// What one pass over the window gathers.
struct Tally {
    kind: ReportKind,
    now: Timestamp,
    due_before: Timestamp,
    totals: Totals,
    users: HashSet<String>,
    subjects: HashSet<String>,
    subject_events: u64,
    processing: BTreeMap<(String, String), Processing>,
    legal_bases: BTreeMap<String, u64>,
    purposes: BTreeMap<String, u64>,
    sources: BTreeMap<String, SourceTally>,
    classifications: BTreeMap<String, u64>,
    requiring_review: Vec<String>,
    retention: RetentionStatus,
    retention_uses: BTreeMap<String, RetentionUse>,
    rights: RightsServed,
    erasure_requests: HashSet<String>,
    redactions: RedactionCounts,
    compliance_events: BTreeMap<(String, String, String), u64>,
    findings: Vec<Finding>,
    findings_total: u64,
    automated: bool,
    sharing: bool,
    sensitive: bool,
}

#[derive(Default)]
struct SourceTally {
    source_type: Option<String>,
    directions: BTreeSet<String>,
    transformations: BTreeSet<String>,
    destinations: BTreeSet<String>,
    uses: u64,
    operations: HashSet<String>,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
}

/// The snake_case name serde gives an enum value (`legitimate_interests`, `high`).
fn label(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "unknown".into(),
    }
}

impl Tally {
    fn new(options: &ReportOptions) -> Tally {
        let due_before = options
            .now
            .checked_add(Span::new().hours(24 * options.due_within_days))
            .unwrap_or(options.now);
        Tally {
            kind: options.kind,
            now: options.now,
            due_before,
            totals: Totals::default(),
            users: HashSet::new(),
            subjects: HashSet::new(),
            subject_events: 0,
            processing: BTreeMap::new(),
            legal_bases: BTreeMap::new(),
            purposes: BTreeMap::new(),
            sources: BTreeMap::new(),
            classifications: BTreeMap::new(),
            requiring_review: Vec::new(),
            retention: RetentionStatus {
                due_within_days: options.due_within_days,
                ..RetentionStatus::default()
            },
            retention_uses: BTreeMap::new(),
            rights: RightsServed::default(),
            erasure_requests: HashSet::new(),
            redactions: RedactionCounts::default(),
            compliance_events: BTreeMap::new(),
            findings: Vec::new(),
            findings_total: 0,
            automated: false,
            sharing: false,
            sensitive: false,
        }
    }

    fn event(&mut self, stored: &StoredEvent) {
        let event = &stored.event;
        let ts = event.timestamp;
        let totals = &mut self.totals;
        totals.events += 1;
        totals.gdpr_events += u64::from(event.compliance.gdpr);
        totals.ccpa_events += u64::from(event.compliance.ccpa);
        totals.first_event = Some(totals.first_event.map_or(ts, |t| t.min(ts)));
        totals.last_event = Some(totals.last_event.map_or(ts, |t| t.max(ts)));
        if let Some(user) = &event.actor.user_id {
            self.users.insert(user.clone());
        }
        if let Some(subject) = &event.compliance.data_subject_id {
            self.subjects.insert(subject.clone());
            self.subject_events += 1;
        }
        self.processing_activity(event);
        for source in &event.data_sources {
            let tally = self.sources.entry(source.uri.clone()).or_default();
            tally.source_type = tally
                .source_type
                .take()
                .or_else(|| source.source_type.clone());
            tally.directions.insert(label(&source.direction));
            tally.transformations.extend(source.transformation.clone());
            tally.destinations.extend(source.destination.clone());
            tally.uses += 1;
            tally.operations.insert(event.operation.clone());
            tally.first = Some(tally.first.map_or(ts, |t| t.min(ts)));
            tally.last = Some(tally.last.map_or(ts, |t| t.max(ts)));
        }
        let classification = event
            .compliance
            .classification
            .map_or_else(|| "none".to_string(), |c| c.to_string());
        if matches!(classification.as_str(), "confidential" | "restricted") {
            self.sensitive = true;
        }
        *self.classifications.entry(classification).or_default() += 1;
        if event.compliance.requires_review == Some(true) {
            self.requiring_review.push(event.id.to_string());
        }
        self.retention(event);
        self.admin(event);
        if !event.compliance.redactions.is_empty() {
            self.redactions.events += 1;
            for r in &event.compliance.redactions {
                *self.redactions.by_rule.entry(r.rule.clone()).or_default() += r.count;
            }
        }
        for c in &event.compliance_events {
            let key = (
                c.framework.clone(),
                c.event_type.clone(),
                label(&c.risk_level),
            );
            *self.compliance_events.entry(key).or_default() += 1;
        }
        self.check(event);
        self.automated |= event.operation.contains("automated");
        self.sharing |= event
            .compliance
            .purpose
            .as_deref()
            .is_some_and(|p| p.contains("shar"));
    }

    fn processing_activity(&mut self, event: &AuditEvent) {
        let basis = event
            .compliance
            .legal_basis
            .as_ref()
            .map_or_else(|| "none".to_string(), label);
        let purpose = event
            .compliance
            .purpose
            .clone()
            .unwrap_or_else(|| "none".into());
        *self.legal_bases.entry(basis.clone()).or_default() += 1;
        *self.purposes.entry(purpose.clone()).or_default() += 1;
        let ts = event.timestamp;
        let activity = self
            .processing
            .entry((basis.clone(), purpose.clone()))
            .or_insert(Processing {
                legal_basis: basis,
                purpose,
                events: 0,
                gdpr_events: 0,
                ccpa_events: 0,
                first: ts,
                last: ts,
            });
        activity.events += 1;
        activity.gdpr_events += u64::from(event.compliance.gdpr);
        activity.ccpa_events += u64::from(event.compliance.ccpa);
        activity.first = activity.first.min(ts);
        activity.last = activity.last.max(ts);
    }

    fn retention(&mut self, event: &AuditEvent) {
        let ts = event.timestamp;
        let policy = match &event.compliance.retention {
            Some(r) => r.to_string(),
            None => {
                self.retention.missing_policy += 1;
                "none".to_string()
            }
        };
        let usage = self
            .retention_uses
            .entry(policy.clone())
            .or_insert(RetentionUse {
                policy,
                events: 0,
                oldest: ts,
                newest: ts,
            });
        usage.events += 1;
        usage.oldest = usage.oldest.min(ts);
        usage.newest = usage.newest.max(ts);
        let retention = &mut self.retention;
        match event.compliance.expires_at {
            None => retention.kept_forever += 1,
            Some(at) if at < self.now => {
                retention.expired += 1;
                retention.oldest_expired = Some(retention.oldest_expired.map_or(at, |t| t.min(at)));
                retention.newest_expired = Some(retention.newest_expired.map_or(at, |t| t.max(at)));
            }
            Some(at) if at < self.due_before => retention.due += 1,
            Some(_) => {}
        }
    }

    fn admin(&mut self, event: &AuditEvent) {
        match admin_record(event) {
            Some(AdminRecord::Erasure) => {
                self.rights.erasures += 1;
                let request = event
                    .correlation_id
                    .clone()
                    .unwrap_or_else(|| event.id.to_string());
                self.erasure_requests.insert(request);
            }
            Some(AdminRecord::SubjectErasure) => self.rights.subject_erasures += 1,
            Some(AdminRecord::Export) => self.rights.exports += 1,
            Some(AdminRecord::HoldPlaced) => self.retention.holds_placed += 1,
            Some(AdminRecord::HoldReleased) => self.retention.holds_released += 1,
            Some(AdminRecord::Cleanup) => {
                self.retention.cleanup_runs += 1;
                self.retention.removed_by_cleanup += cleanup_entries(event);
            }
            None => {}
        }
    }

    /// The regulation's checks (the seed reporter's): GDPR Art. 6 and 5(1)(e), CCPA
    /// §1798.100.
    fn check(&mut self, event: &AuditEvent) {
        let compliance = &event.compliance;
        let mut found = Vec::new();
        match self.kind {
            ReportKind::Gdpr => {
                if compliance.gdpr && compliance.legal_basis.is_none() {
                    found.push(Finding {
                        kind: "missing_legal_basis",
                        severity: "high",
                        event_id: event.id.to_string(),
                        description: "GDPR-applicable operation without a legal basis".into(),
                        regulation: "GDPR Article 6",
                    });
                }
                if let Some(at) = compliance.expires_at {
                    let days = at.duration_since(event.timestamp).as_secs() / 86_400;
                    if days > GDPR_MAX_RETENTION_DAYS {
                        found.push(Finding {
                            kind: "excessive_retention",
                            severity: "medium",
                            event_id: event.id.to_string(),
                            description: format!(
                                "retention of {days} days exceeds {GDPR_MAX_RETENTION_DAYS}"
                            ),
                            regulation: "GDPR Article 5(1)(e)",
                        });
                    }
                }
            }
            ReportKind::Ccpa => {
                if compliance.ccpa && compliance.purpose.is_none() {
                    found.push(Finding {
                        kind: "missing_processing_purpose",
                        severity: "medium",
                        event_id: event.id.to_string(),
                        description: "CCPA-applicable operation without a processing purpose"
                            .into(),
                        regulation: "CCPA Section 1798.100",
                    });
                }
            }
            ReportKind::Activity | ReportKind::Pia => {}
        }
        self.findings_total += found.len() as u64;
        let room = MAX_FINDINGS.saturating_sub(self.findings.len());
        self.findings.extend(found.into_iter().take(room));
    }

    fn finish(
        mut self,
        options: ReportOptions,
        verdicts: HashMap<String, Option<Verdict>>,
        holds_in_force: u64,
    ) -> Report {
        self.totals.distinct_users = self.users.len() as u64;
        let mut review = ReviewStatus {
            requiring_review: self.requiring_review.len() as u64,
            ..ReviewStatus::default()
        };
        for id in &self.requiring_review {
            match verdicts.get(id).copied() {
                Some(verdict) => {
                    review.reviewed += 1;
                    let name = verdict.map_or("none", Verdict::as_str).to_string();
                    *review.verdicts.entry(name).or_default() += 1;
                }
                None => review.pending += 1,
            }
        }
        self.rights.erasure_requests = self.erasure_requests.len() as u64;
        let mut retention = self.retention;
        retention.by_policy = self.retention_uses.into_values().collect();
        retention.holds_in_force = holds_in_force;
        retention.status = if retention.expired == 0 {
            "compliant"
        } else {
            "cleanup due"
        };
        let data_subjects = DataSubjects {
            distinct: self.subjects.len() as u64,
            events: self.subject_events,
        };
        let risk = (self.kind == ReportKind::Pia).then(|| {
            let factors = BTreeMap::from([
                ("high_volume_processing", self.totals.events > HIGH_VOLUME),
                ("sensitive_data", self.sensitive),
                // Not knowable from the log: where a server runs is not recorded.
                ("cross_border_transfers", false),
                ("automated_decision_making", self.automated),
                ("data_sharing", self.sharing),
            ]);
            let score = factors.values().filter(|f| **f).count() as u64;
            let level = match score {
                4.. => "high",
                2.. => "medium",
                _ => "low",
            };
            RiskAnalysis {
                factors,
                score,
                level,
                mitigation_required: level != "low",
            }
        });
        let recommendations = recommendations(
            self.kind,
            &self.legal_bases,
            &data_subjects,
            &review,
            &retention,
            risk.as_ref(),
        );
        Report {
            report: self.kind,
            title: self.kind.title(),
            generated_at: options.now,
            period: Period {
                since: options.since,
                until: options.until,
            },
            totals: self.totals,
            processing: self.processing.into_values().collect(),
            legal_bases: self.legal_bases,
            purposes: self.purposes,
            data_subjects,
            data_sources: self
                .sources
                .into_iter()
                .map(|(uri, s)| SourceUse {
                    uri,
                    source_type: s.source_type,
                    directions: s.directions.into_iter().collect(),
                    transformations: s.transformations.into_iter().collect(),
                    destinations: s.destinations.into_iter().collect(),
                    uses: s.uses,
                    operations: s.operations.len() as u64,
                    first_used: s.first.unwrap_or(options.now),
                    last_used: s.last.unwrap_or(options.now),
                })
                .collect(),
            classifications: self.classifications,
            review,
            retention,
            rights: self.rights,
            redactions: self.redactions,
            compliance_events: self
                .compliance_events
                .into_iter()
                .map(
                    |((framework, event_type, risk_level), events)| ComplianceEventCount {
                        framework,
                        event_type,
                        risk_level,
                        events,
                    },
                )
                .collect(),
            integrity: Integrity {
                logs: options.logs,
                last_verify: options.last_verify,
            },
            findings: self.findings,
            findings_total: self.findings_total,
            recommendations,
            risk,
        }
    }
}

/// The seed reporter's recommendations, and ours for what the log shows undone.
fn recommendations(
    kind: ReportKind,
    legal_bases: &BTreeMap<String, u64>,
    subjects: &DataSubjects,
    review: &ReviewStatus,
    retention: &RetentionStatus,
    risk: Option<&RiskAnalysis>,
) -> Vec<String> {
    let mut out = Vec::new();
    let stated = legal_bases.keys().any(|b| b != "none");
    if kind == ReportKind::Gdpr && !stated {
        out.push("Ensure all data processing has a valid legal basis under GDPR".into());
    }
    if subjects.distinct > 100 && matches!(kind, ReportKind::Gdpr | ReportKind::Ccpa) {
        out.push("Consider implementing automated data subject rights management".into());
    }
    if review.pending > 0 {
        out.push(format!(
            "Review the {} events awaiting review",
            review.pending
        ));
    }
    if retention.expired > 0 {
        out.push(format!(
            "Run `mcp-audit cleanup`: {} events are past their retention",
            retention.expired
        ));
    }
    if let Some(risk) = risk {
        if risk.factors["high_volume_processing"] {
            out.push("Implement data minimization techniques to reduce processing volume".into());
        }
        if risk.factors["sensitive_data"] {
            out.push("Apply additional security controls for sensitive data processing".into());
        }
        if risk.factors["automated_decision_making"] {
            out.push("Ensure transparency and explainability in automated decision-making".into());
        }
        if risk.level == "high" {
            out.push("Conduct a formal Data Protection Impact Assessment (DPIA)".into());
        }
    }
    out
}
