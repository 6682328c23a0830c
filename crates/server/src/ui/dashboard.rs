//! The dashboard: the pictures people would rather look at than read, drawn by the server as
//! SVG (no JavaScript): tool calls and errors over time (for one server or tool when the URL
//! says so), calls, errors and latency p50/p95 per tool (the busiest first), and the users with
//! the most operations. Every figure comes from the store's own aggregates (`summary`,
//! `tool_stats`, `count`), the same the CLI's `summary` and `stats` print, so a picture never
//! says something the numbers do not.

use std::sync::Arc;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use mcp_audit_core::{EventKind, Outcome};
use mcp_audit_store::{Filter, Summary, SummaryScope, TimeBasis, ToolStats};

use super::{Nav, UiResult, caller, cleaned, html, short_time};
use crate::App;
use crate::error::ApiError;
use crate::params::Params;
use crate::tokens::Role;

/// The most tools the dashboard draws (the busiest).
const DASHBOARD_TOOLS: usize = 15;

/// The most users the dashboard draws (the busiest).
const DASHBOARD_USERS: usize = 10;

/// Columns of the calls-over-time chart.
const BUCKETS: usize = 12;

/// The height of the calls-over-time chart's plot (its labels are below).
const PLOT_HEIGHT: f64 = 100.0;

/// The width of the calls-over-time chart: wide and short, so that on a laptop it leaves room
/// for the charts below it and on a phone its columns stay apart.
const TIMELINE_WIDTH: f64 = 560.0;

/// One tool's bar of the dashboard: calls and errors as widths (of 100), latencies as text.
struct Bar {
    tool: String,
    label: String,
    y: u32,
    calls: u64,
    errors: u64,
    calls_width: f64,
    errors_width: f64,
    p50: String,
    p95: String,
    p95_width: f64,
}

/// One user's bar: operations as a width (of 100).
struct UserBar {
    user: String,
    label: String,
    y: u32,
    operations: u64,
    width: f64,
}

/// One column of the calls-over-time chart: a slice of the window.
struct Column {
    x: f64,
    calls: u64,
    errors: u64,
    calls_height: f64,
    errors_height: f64,
    from: String,
    to: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    nav: Option<Nav>,
    since: String,
    server: String,
    tool: String,
    figures: Vec<(&'static str, u64)>,
    bars: Vec<Bar>,
    height: u32,
    users: Vec<UserBar>,
    users_height: u32,
    columns: Vec<Column>,
    column_width: f64,
    /// The window the columns cover, as text (its first and last instant).
    window: (String, String),
    error: Option<String>,
}

fn millis(us: Option<u64>) -> String {
    us.map(|us| format!("{:.1} ms", us as f64 / 1000.0))
        .unwrap_or_else(|| "—".into())
}

/// A label that fits the charts' narrow label column; the full text is in the bar's title.
fn label(text: &str) -> String {
    if text.chars().count() > 22 {
        format!("{}…", text.chars().take(21).collect::<String>())
    } else {
        text.to_string()
    }
}

/// Tool calls and errors in one slice of the window: the slice's bounds and its two counts.
struct Slice {
    from: Timestamp,
    to: Timestamp,
    calls: u64,
    errors: u64,
}

/// What the dashboard reads, in one trip to a reader.
struct Figures {
    summary: Summary,
    tools: Vec<ToolStats>,
    slices: Vec<Slice>,
}

/// The window's slices, counted: tool calls (outcomes, not intents) and, among them, errors
/// (the outcomes `Outcome::is_error` names), for `server` and `tool` when given.
fn slices(
    store: &mut dyn mcp_audit_store::Store,
    base: &Filter,
    start: Timestamp,
    end: Timestamp,
) -> Result<Vec<Slice>, ApiError> {
    let (first, last) = (start.as_microsecond(), end.as_microsecond());
    let step = ((last - first).max(1) as u64).div_ceil(BUCKETS as u64) as i64;
    let at = |us: i64| Timestamp::from_microsecond(us).unwrap_or(end);
    let mut out = Vec::with_capacity(BUCKETS);
    for i in 0..BUCKETS as i64 {
        let (from, to) = (at(first + i * step), at(first + (i + 1) * step));
        let within = Filter {
            since: Some(from),
            until: Some(to),
            ..base.clone()
        };
        let calls = store.count(&within)?;
        let mut errors = 0;
        for outcome in Outcome::ALL.into_iter().filter(|o| o.is_error()) {
            errors += store.count(&Filter {
                outcome: Some(outcome),
                ..within.clone()
            })?;
        }
        out.push(Slice {
            from,
            to,
            calls,
            errors,
        });
    }
    Ok(out)
}

/// Calls and errors over time and per tool, latency per tool, top users, drawn by the server
/// as SVG, over `since` (default 7d), for `server` and `tool` when given.
pub(super) async fn dashboard(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> UiResult {
    let (caller, _) = caller(&app, &headers, Role::Viewer).await?;
    let query = cleaned(query.as_deref(), &[]);
    let field = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let since = field("since").unwrap_or_else(|| "7d".to_string());
    let mut page = DashboardPage {
        nav: Some(caller.nav),
        since: since.clone(),
        server: field("server").unwrap_or_default(),
        tool: field("tool").unwrap_or_default(),
        figures: Vec::new(),
        bars: Vec::new(),
        height: 0,
        users: Vec::new(),
        users_height: 0,
        columns: Vec::new(),
        column_width: 0.0,
        window: (String::new(), String::new()),
        error: None,
    };
    let read = async {
        let params = Params::parse(Some(&query), false, &["since", "server", "tool"])?;
        let since = match params.time("since")? {
            Some(t) => Some(t),
            None => Some(crate::time::parse_time(&since).map_err(ApiError::bad_request)?),
        };
        let base = Filter {
            kinds: vec![EventKind::ToolExecution],
            server_name: params.text("server").map(str::to_string),
            operation: params.text("tool").map(str::to_string),
            since,
            ..Filter::default()
        };
        app.read(move |_, store| {
            let summary = store.summary(&SummaryScope::Window {
                since,
                until: None,
                time: TimeBasis::Stated,
            })?;
            let tools = store.tool_stats(&Filter {
                operation: None,
                ..base.clone()
            })?;
            // From the window's first activity to its last, so that the columns show the
            // events rather than the empty days around them.
            let slices = match (summary.first_activity, summary.last_activity) {
                (Some(first), Some(last)) => {
                    let start = since.map_or(first, |s| s.max(first));
                    let end = last
                        .checked_add(jiff::SignedDuration::from_micros(1))
                        .unwrap_or(last);
                    slices(store, &base, start, end)?
                }
                _ => Vec::new(),
            };
            Ok(Figures {
                summary,
                tools,
                slices,
            })
        })
        .await
    };
    match read.await {
        Ok(figures) => {
            draw(&mut page, figures);
            Ok(html(StatusCode::OK, &page))
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            page.error = Some(e.message);
            Ok(html(StatusCode::BAD_REQUEST, &page))
        }
        Err(e) => Err(e.into()),
    }
}

/// Lays the figures out as the page's bars and columns.
fn draw(page: &mut DashboardPage, figures: Figures) {
    let Figures {
        summary,
        mut tools,
        slices,
    } = figures;
    let failed: u64 = summary
        .by_outcome
        .iter()
        .filter(|(outcome, _)| !matches!(outcome.as_str(), "success" | "pending"))
        .map(|(_, n)| n)
        .sum();
    page.figures = vec![
        ("operations", summary.total_operations),
        ("tool calls", summary.tool_executions),
        ("failed", failed),
        ("require review", summary.requires_review),
        ("users", summary.distinct_users),
    ];
    tools.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.tool.cmp(&b.tool)));
    tools.truncate(DASHBOARD_TOOLS);
    let most = tools.iter().map(|t| t.calls).max().unwrap_or(1).max(1) as f64;
    let slowest = tools
        .iter()
        .filter_map(|t| t.p95_us)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    page.bars = tools
        .iter()
        .enumerate()
        .map(|(i, t)| Bar {
            label: label(&t.tool),
            tool: t.tool.clone(),
            y: i as u32 * 26,
            calls: t.calls,
            errors: t.errors,
            calls_width: t.calls as f64 / most * 100.0,
            errors_width: t.errors as f64 / most * 100.0,
            p50: millis(t.p50_us),
            p95: millis(t.p95_us),
            p95_width: t.p95_us.map(|p| p as f64 / slowest * 100.0).unwrap_or(0.0),
        })
        .collect();
    page.height = page.bars.len() as u32 * 26;

    let mut users: Vec<(String, u64)> = summary.by_user.into_iter().collect();
    users.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    users.truncate(DASHBOARD_USERS);
    let busiest = users.first().map_or(1, |u| u.1).max(1) as f64;
    page.users = users
        .into_iter()
        .enumerate()
        .map(|(i, (user, operations))| UserBar {
            label: label(&user),
            user,
            y: i as u32 * 26,
            operations,
            width: operations as f64 / busiest * 100.0,
        })
        .collect();
    page.users_height = page.users.len() as u32 * 26;

    let tallest = slices.iter().map(|s| s.calls).max().unwrap_or(1).max(1) as f64;
    let width = TIMELINE_WIDTH / BUCKETS as f64;
    page.column_width = width - 4.0;
    page.columns = slices
        .iter()
        .enumerate()
        .map(|(i, s)| Column {
            x: i as f64 * width + 2.0,
            calls: s.calls,
            errors: s.errors,
            calls_height: s.calls as f64 / tallest * PLOT_HEIGHT,
            errors_height: s.errors as f64 / tallest * PLOT_HEIGHT,
            from: short_time(&s.from),
            to: short_time(&s.to),
        })
        .collect();
    if let (Some(first), Some(last)) = (slices.first(), slices.last()) {
        page.window = (short_time(&first.from), short_time(&last.to));
    }
}
