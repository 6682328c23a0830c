//! A report as JSON (the model as is), CSV, or one HTML file.
//!
//! CSV and HTML are written from the same tables ([`Section`]), so the two always show the
//! same figures: CSV in long form, one row per figure (`section,item,figure,value`), which a
//! spreadsheet pivots and a script filters without knowing each table's columns.

use std::io::Write;
use std::str::FromStr;

use askama::Template;
use jiff::Timestamp;

use super::model::{Report, ReportError};

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Json,
    Csv,
}

impl FromStr for Format {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "html" => Ok(Format::Html),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => Err(ReportError::UnknownFormat(s.to_string())),
        }
    }
}

/// Writes `report` to `out` in `format`.
pub fn render(report: &Report, format: Format, out: &mut dyn Write) -> Result<(), ReportError> {
    let write = |e: &dyn std::fmt::Display| ReportError::Write(e.to_string());
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report).map_err(|e| write(&e))?;
            writeln!(out).map_err(|e| write(&e))
        }
        Format::Csv => {
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(["section", "item", "figure", "value"])
                .map_err(|e| write(&e))?;
            for section in sections(report) {
                for row in &section.rows {
                    let item = row.first().map_or("", String::as_str);
                    for (header, value) in section.headers.iter().zip(row).skip(1) {
                        csv.write_record([section.title, item, header, value])
                            .map_err(|e| write(&e))?;
                    }
                }
            }
            csv.flush().map_err(|e| write(&e))
        }
        Format::Html => {
            let page = ReportPage {
                title: report.title,
                period: period(report),
                generated_at: time(report.generated_at),
                sections: sections(report),
            };
            let html = page.render().map_err(|e| write(&e))?;
            out.write_all(html.as_bytes()).map_err(|e| write(&e))
        }
    }
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    title: &'static str,
    period: String,
    generated_at: String,
    sections: Vec<Section>,
}

/// One table of the report: the first column names the row.
struct Section {
    title: &'static str,
    /// What the table says, for a reader who does not know the log.
    note: &'static str,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

fn time(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

fn opt_time(ts: Option<Timestamp>) -> String {
    ts.map(time).unwrap_or_else(|| "–".into())
}

fn period(report: &Report) -> String {
    match (report.period.since, report.period.until) {
        (None, None) => "all events".into(),
        (since, until) => format!("from {} until {}", opt_time(since), opt_time(until)),
    }
}

fn figures(rows: &[(&str, String)]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|(name, value)| vec![name.to_string(), value.clone()])
        .collect()
}

fn counted<'a>(map: impl IntoIterator<Item = (&'a String, &'a u64)>) -> Vec<Vec<String>> {
    map.into_iter()
        .map(|(k, v)| vec![k.clone(), v.to_string()])
        .collect()
}

fn sections(report: &Report) -> Vec<Section> {
    let t = &report.totals;
    let mut out = vec![Section {
        title: "Summary",
        note: "The events recorded in the period.",
        headers: vec!["figure", "value"],
        rows: figures(&[
            ("events", t.events.to_string()),
            ("GDPR-applicable events", t.gdpr_events.to_string()),
            ("CCPA-applicable events", t.ccpa_events.to_string()),
            ("distinct users", t.distinct_users.to_string()),
            (
                "data subjects (distinct)",
                report.data_subjects.distinct.to_string(),
            ),
            (
                "events naming a data subject",
                report.data_subjects.events.to_string(),
            ),
            ("first event", opt_time(t.first_event)),
            ("last event", opt_time(t.last_event)),
        ]),
    }];
    out.push(Section {
        title: "Processing activities",
        note: "Events by legal basis (GDPR Art. 6) and purpose; 'none' where the event states none.",
        headers: vec!["legal basis / purpose", "events", "GDPR", "CCPA", "first", "last"],
        rows: report
            .processing
            .iter()
            .map(|p| {
                vec![
                    format!("{} / {}", p.legal_basis, p.purpose),
                    p.events.to_string(),
                    p.gdpr_events.to_string(),
                    p.ccpa_events.to_string(),
                    time(p.first),
                    time(p.last),
                ]
            })
            .collect(),
    });
    out.push(Section {
        title: "Legal bases",
        note: "Events by legal basis.",
        headers: vec!["legal basis", "events"],
        rows: counted(&report.legal_bases),
    });
    out.push(Section {
        title: "Purposes",
        note: "Events by processing purpose.",
        headers: vec!["purpose", "events"],
        rows: counted(&report.purposes),
    });
    out.push(Section {
        title: "Data sources and lineage",
        note: "Each source the events used, how, and into what.",
        headers: vec![
            "source",
            "type",
            "directions",
            "transformations",
            "destinations",
            "uses",
            "operations",
            "first used",
            "last used",
        ],
        rows: report
            .data_sources
            .iter()
            .map(|s| {
                vec![
                    s.uri.clone(),
                    s.source_type.clone().unwrap_or_default(),
                    s.directions.join(", "),
                    s.transformations.join(", "),
                    s.destinations.join(", "),
                    s.uses.to_string(),
                    s.operations.to_string(),
                    time(s.first_used),
                    time(s.last_used),
                ]
            })
            .collect(),
    });
    out.push(Section {
        title: "Classification",
        note: "Events by classification.",
        headers: vec!["classification", "events"],
        rows: counted(&report.classifications),
    });
    let r = &report.review;
    let mut review = figures(&[
        ("requiring review", r.requiring_review.to_string()),
        ("reviewed", r.reviewed.to_string()),
        ("pending", r.pending.to_string()),
    ]);
    review.extend(
        r.verdicts
            .iter()
            .map(|(v, n)| vec![format!("verdict: {v}"), n.to_string()]),
    );
    out.push(Section {
        title: "Review",
        note: "Events requiring review and whether a reviewer has seen them (a review at any time counts).",
        headers: vec!["figure", "events"],
        rows: review,
    });
    let ret = &report.retention;
    out.push(Section {
        title: "Retention",
        note: "Expired: past its expiry, still stored until the next cleanup. Due: expiring soon.",
        headers: vec!["figure", "value"],
        rows: figures(&[
            ("status", ret.status.to_string()),
            ("expired, still stored", ret.expired.to_string()),
            ("oldest expiry passed", opt_time(ret.oldest_expired)),
            ("newest expiry passed", opt_time(ret.newest_expired)),
            (
                "due",
                format!("{} (within {} days)", ret.due, ret.due_within_days),
            ),
            ("kept forever", ret.kept_forever.to_string()),
            ("without a retention policy", ret.missing_policy.to_string()),
            ("legal holds in force", ret.holds_in_force.to_string()),
            ("events kept by a legal hold", ret.held.to_string()),
            ("legal holds placed", ret.holds_placed.to_string()),
            ("legal holds released", ret.holds_released.to_string()),
            ("cleanup runs", ret.cleanup_runs.to_string()),
            (
                "entries removed by cleanup",
                ret.removed_by_cleanup.to_string(),
            ),
        ]),
    });
    out.push(Section {
        title: "Retention policies",
        note: "Events by the retention they were recorded with.",
        headers: vec!["policy", "events", "oldest", "newest"],
        rows: ret
            .by_policy
            .iter()
            .map(|p| {
                vec![
                    p.policy.clone(),
                    p.events.to_string(),
                    time(p.oldest),
                    time(p.newest),
                ]
            })
            .collect(),
    });
    out.push(Section {
        title: "Data-subject requests",
        note: "Erasures and exports served, as recorded in the log.",
        headers: vec!["figure", "value"],
        rows: figures(&[
            ("records erased", report.rights.erasures.to_string()),
            (
                "erasure requests",
                report.rights.erasure_requests.to_string(),
            ),
            (
                "data subjects' erasure requests",
                report.rights.subject_erasures.to_string(),
            ),
            ("exports served", report.rights.exports.to_string()),
        ]),
    });
    let mut redactions = figures(&[("events redacted", report.redactions.events.to_string())]);
    redactions.extend(
        report
            .redactions
            .by_rule
            .iter()
            .map(|(rule, n)| vec![format!("rule: {rule}"), n.to_string()]),
    );
    out.push(Section {
        title: "Redactions",
        note: "Values taken out before storage, by rule (the values themselves were never stored).",
        headers: vec!["figure", "count"],
        rows: redactions,
    });
    out.push(Section {
        title: "Compliance events",
        note: "Compliance events recorded with the events, by framework, type and risk.",
        headers: vec!["framework / type", "risk", "events"],
        rows: report
            .compliance_events
            .iter()
            .map(|c| {
                vec![
                    format!("{} / {}", c.framework, c.event_type),
                    c.risk_level.clone(),
                    c.events.to_string(),
                ]
            })
            .collect(),
    });
    let mut integrity: Vec<Vec<String>> = report
        .integrity
        .logs
        .iter()
        .map(|l| {
            let (size, root) = l.newest_checkpoint.as_ref().map_or_else(
                || ("none".to_string(), String::new()),
                |c| (c.size.to_string(), c.root.clone()),
            );
            vec![format!("log {}", l.log_id), l.size.to_string(), size, root]
        })
        .collect();
    integrity.push(match &report.integrity.last_verify {
        Some(v) => vec![
            "last verify".into(),
            v.entries.to_string(),
            v.checkpoints_verified.to_string(),
            format!(
                "{} at {}: {} findings{}",
                if v.ok { "passed" } else { "FAILED" },
                time(v.at),
                v.findings,
                if v.signatures_checked {
                    ""
                } else {
                    " (no key: signatures not checked)"
                }
            ),
        ],
        None => vec![
            "last verify".into(),
            String::new(),
            String::new(),
            "not run for this report (mcp-audit verify, or report --verify)".into(),
        ],
    });
    out.push(Section {
        title: "Integrity",
        note: "Each log's size and newest signed checkpoint; the verify run made for this report.",
        headers: vec![
            "log",
            "entries",
            "newest checkpoint (entries)",
            "root / result",
        ],
        rows: integrity,
    });
    if !report.findings.is_empty() || report.findings_total > 0 {
        let mut rows: Vec<Vec<String>> = report
            .findings
            .iter()
            .map(|f| {
                vec![
                    f.kind.to_string(),
                    f.severity.to_string(),
                    f.event_id.clone(),
                    f.regulation.to_string(),
                    f.description.clone(),
                ]
            })
            .collect();
        if report.findings_total > report.findings.len() as u64 {
            rows.push(vec![
                "more".into(),
                String::new(),
                String::new(),
                String::new(),
                format!("{} findings in all", report.findings_total),
            ]);
        }
        out.push(Section {
            title: "Findings",
            note: "Events the regulation's checks found wanting.",
            headers: vec!["finding", "severity", "event", "regulation", "description"],
            rows,
        });
    }
    if let Some(risk) = &report.risk {
        let mut rows: Vec<Vec<String>> = risk
            .factors
            .iter()
            .map(|(f, on)| vec![f.to_string(), if *on { "yes" } else { "no" }.into()])
            .collect();
        rows.push(vec!["risk score".into(), risk.score.to_string()]);
        rows.push(vec!["risk level".into(), risk.level.into()]);
        rows.push(vec![
            "mitigation required".into(),
            if risk.mitigation_required {
                "yes"
            } else {
                "no"
            }
            .into(),
        ]);
        out.push(Section {
            title: "Risk analysis",
            note: "The privacy impact assessment's risk factors.",
            headers: vec!["factor", "present"],
            rows,
        });
    }
    out.push(Section {
        title: "Recommendations",
        note: "What the figures call for.",
        headers: vec!["#", "recommendation"],
        rows: report
            .recommendations
            .iter()
            .enumerate()
            .map(|(i, r)| vec![(i + 1).to_string(), r.clone()])
            .collect(),
    });
    out
}
