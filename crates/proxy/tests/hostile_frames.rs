//! The interpreter against the frames an attacker picks to slip past the trail: what a server
//! can parse and run is on record as the operation it is, and in `sync` whatever the proxy
//! still can not interpret is refused. The same frames go through the real proxy and real
//! servers in the CLI's tests (`crates/cli/tests/proxy.rs`, `http_proxy.rs`); here every rule
//! is checked at the interpreter, and a property test throws generated frames at it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mcp_audit_core::{Actor, EventKind, Outcome};
use mcp_audit_proxy::{Admission, Direction, Interpreter, Record, SessionConfig};
use proptest::prelude::*;
use serde_json::{Value, json};

const C2S: Direction = Direction::ClientToServer;
const S2C: Direction = Direction::ServerToClient;

/// `sync` (intents held, uninterpretable frames refused) or `batch`.
fn interpreter(sync: bool) -> Interpreter {
    Interpreter::new(SessionConfig {
        session_id: "s".into(),
        server_name: None,
        actor: Actor::user("mallory"),
        transport: "stdio",
        capture_limit: 64 * 1024,
        record_intents: sync,
    })
}

/// The records of a frame the interpreter lets through (a refusal fails the test).
fn forwarded(i: &mut Interpreter, frame: &[u8]) -> Vec<Record> {
    match i.admit(C2S, frame, Instant::now()) {
        Admission::Forward(records) => records,
        Admission::Refuse { reason, .. } => panic!("refused: {reason}"),
    }
}

/// The records and reason of a frame the interpreter refuses (forwarding fails the test).
fn refused(i: &mut Interpreter, frame: &[u8]) -> (Vec<Record>, String) {
    match i.admit(C2S, frame, Instant::now()) {
        Admission::Refuse { records, reason } => (records, reason),
        Admission::Forward(records) => panic!("forwarded: {records:#?}"),
    }
}

/// A `tools/call echo` whose `arguments` are `arguments` (raw JSON text, any bytes).
fn echo(id: u32, arguments: &[u8]) -> Vec<u8> {
    let mut frame = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":"#
    )
    .into_bytes();
    frame.extend_from_slice(arguments);
    frame.extend_from_slice(b"}}");
    frame
}

/// The frames of issue 16 that `serde_json` refused while servers ran them.
fn differential_frames() -> Vec<(&'static str, Vec<u8>)> {
    let deep = format!(
        r#"{{"message":"deep","nested":{}{}}}"#,
        "[".repeat(129),
        "]".repeat(129)
    );
    vec![
        ("129-deep array", echo(1, deep.as_bytes())),
        (
            "invalid UTF-8",
            echo(1, b"{\"message\":\"caf\xc3\x28\xff\"}"),
        ),
        ("1e400", echo(1, br#"{"message":"n","n":1e400}"#)),
        ("lone surrogate", echo(1, br#"{"message":"a\ud800b"}"#)),
    ]
}

#[test]
fn what_servers_parse_and_strict_json_does_not_is_held_as_its_operation_in_sync() {
    for (what, frame) in differential_frames() {
        assert!(
            serde_json::from_slice::<Value>(&frame).is_err(),
            "{what}: serde_json reads it"
        );
        let mut i = interpreter(true);
        let records = forwarded(&mut i, &frame);
        assert_eq!(records.len(), 1, "{what}: {records:#?}");
        let intent = &records[0];
        assert!(intent.before_forwarding, "{what}");
        assert_eq!(
            (
                intent.event.kind,
                intent.event.operation.as_str(),
                intent.event.outcome
            ),
            (EventKind::ToolExecution, "echo", Outcome::Pending),
            "{what}"
        );
        let input = intent.event.payload.input.as_ref().unwrap();
        assert!(input["message"].is_string(), "{what}: {input}");
        // The answer pairs with it.
        let done = i.frame(
            S2C,
            br#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            Instant::now(),
        );
        assert_eq!(done[0].event.completes, Some(intent.event.id), "{what}");
    }
}

#[test]
fn what_servers_parse_and_strict_json_does_not_is_recorded_in_batch() {
    for (what, frame) in differential_frames() {
        let mut i = interpreter(false);
        assert!(forwarded(&mut i, &frame).is_empty(), "{what}");
        let done = i.frame(
            S2C,
            br#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            Instant::now(),
        );
        assert_eq!(done.len(), 1, "{what}");
        assert_eq!(done[0].event.operation, "echo", "{what}");
        assert_eq!(done[0].event.outcome, Outcome::Success, "{what}");
    }
}

#[test]
fn numbers_no_double_holds_are_recorded_as_written() {
    let mut i = interpreter(true);
    let records = forwarded(
        &mut i,
        &echo(
            1,
            br#"{"n":1e400,"m":123456789012345678901234567890,"k":-1e-400}"#,
        ),
    );
    assert_eq!(
        records[0].event.payload.input,
        Some(json!({"n": "1e400", "m": "123456789012345678901234567890", "k": "-1e-400"}))
    );
}

#[test]
fn a_frame_that_is_not_json_rpc_is_refused_in_sync_and_recorded_in_batch() {
    for frame in [
        &b"this is not json"[..],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo""#,
        br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},42]"#,
    ] {
        let text = String::from_utf8_lossy(frame);
        let (records, reason) = refused(&mut interpreter(true), frame);
        assert!(reason.contains("could not be interpreted"), "{reason}");
        assert!(
            records.iter().all(|r| r.event.outcome == Outcome::Denied),
            "{text}: {records:#?}"
        );
        assert!(
            records.iter().any(|r| r.event.operation == "refused_frame"),
            "{text}"
        );
        if text.contains("echo") {
            // What its start names is on record as denied too.
            assert!(
                records.iter().any(|r| r.event.operation == "echo"),
                "{text}: {records:#?}"
            );
        }
        let records = forwarded(&mut interpreter(false), frame);
        assert!(
            records
                .iter()
                .any(|r| r.event.operation == "malformed_frame"),
            "{text}"
        );
    }
    // A blank line is nothing a server can run: it passes, on record as malformed.
    let records = forwarded(&mut interpreter(true), b" \t");
    assert_eq!(records[0].event.operation, "malformed_frame");
}

#[test]
fn a_request_id_reused_in_flight_is_refused_in_sync() {
    let mut i = interpreter(true);
    let first = forwarded(&mut i, &echo(7, br#"{"message":"first"}"#));
    assert_eq!(first[0].event.outcome, Outcome::Pending);
    let (records, reason) = refused(&mut i, &echo(7, br#"{"message":"second"}"#));
    assert!(reason.contains("in flight"), "{reason}");
    assert_eq!(
        (
            records[0].event.operation.as_str(),
            records[0].event.outcome
        ),
        ("echo", Outcome::Denied)
    );
    assert_eq!(
        records[0].event.payload.input,
        Some(json!({"message": "second"})),
        "what was asked is on record, though it did not run"
    );
    // The answer belongs to the first call, whose id it is.
    let done = i.frame(S2C, br#"{"id":7,"result":{"content":[]}}"#, Instant::now());
    assert_eq!(done[0].event.completes, Some(first[0].event.id));
    assert_eq!(
        done[0].event.payload.input,
        Some(json!({"message": "first"}))
    );
    // Once answered, the id is free again; and within one batch, an id twice is a reuse.
    assert_eq!(forwarded(&mut i, &echo(7, b"{}")).len(), 1);
    let twice = br#"[{"id":8,"method":"tools/call","params":{"name":"a"}},{"id":8,"method":"tools/call","params":{"name":"b"}}]"#;
    let (records, _) = refused(&mut i, twice);
    assert_eq!(records.len(), 2);
}

#[test]
fn a_request_id_reused_in_flight_closes_the_earlier_call_in_batch() {
    let mut i = interpreter(false);
    assert!(forwarded(&mut i, &echo(7, br#"{"message":"first"}"#)).is_empty());
    let closed = forwarded(&mut i, &echo(7, br#"{"message":"second"}"#));
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].event.outcome, Outcome::Incomplete);
    assert_eq!(
        closed[0].event.payload.input,
        Some(json!({"message": "first"}))
    );
    assert!(
        closed[0]
            .event
            .payload
            .error_message
            .as_deref()
            .unwrap()
            .contains("reused")
    );
    let done = i.frame(S2C, br#"{"id":7,"result":{"content":[]}}"#, Instant::now());
    assert_eq!(
        done[0].event.payload.details.as_ref().unwrap()["request_id_reused"],
        true
    );
}

#[test]
fn a_tool_call_with_a_blank_name_is_recorded_under_its_method() {
    for name in [r#""""#, r#""   ""#, "7", "null"] {
        let frame = format!(
            r#"{{"id":1,"method":"tools/call","params":{{"name":{name},"arguments":{{}}}}}}"#
        );
        let mut i = interpreter(true);
        let records = forwarded(&mut i, frame.as_bytes());
        assert_eq!(records.len(), 1, "{name}");
        let e = &records[0].event;
        assert_eq!(
            (e.operation.as_str(), e.outcome),
            ("tools/call", Outcome::Pending),
            "{name}"
        );
        let expected: Value = serde_json::from_str(name).unwrap();
        assert_eq!(e.payload.details.as_ref().unwrap()["name"], expected);
    }
    // A blank method is a request on record too.
    let records = forwarded(&mut interpreter(false), br#"{"id":1,"method":""}"#);
    assert!(records.is_empty());
}

#[test]
fn an_error_code_beyond_2_pow_53_keeps_the_outcome() {
    for code in [
        "9007199254740993",
        "-18446744073709551615",
        "1e400",
        "1.5",
        "\"x\"",
    ] {
        for sync in [true, false] {
            let mut i = interpreter(sync);
            forwarded(&mut i, &echo(1, b"{}"));
            let answer = format!(r#"{{"id":1,"error":{{"code":{code},"message":"boom"}}}}"#);
            let done = i.frame(S2C, answer.as_bytes(), Instant::now());
            assert_eq!(done.len(), 1, "{code}");
            let mut event = done[0].event.clone();
            assert_eq!(event.outcome, Outcome::ProtocolError);
            assert_eq!(event.error_code, None);
            let message = event.payload.error_message.clone().unwrap();
            assert!(
                message.starts_with("boom") && message.contains("error code"),
                "{message}"
            );
            // The store accepts it: the model's own checks pass.
            event.normalize().unwrap();
        }
    }
    let mut i = interpreter(false);
    forwarded(&mut i, &echo(1, b"{}"));
    let done = i.frame(
        S2C,
        br#"{"id":1,"error":{"code":-32602,"message":"bad"}}"#,
        Instant::now(),
    );
    assert_eq!(done[0].event.error_code, Some(-32602));
}

#[test]
fn an_oversized_frame_is_refused_in_sync_and_its_named_call_recorded_in_batch() {
    let start = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"xxxxxxxx"#;
    let size = 11 * 1024 * 1024;
    let mut i = interpreter(true);
    match i.admit_oversize(C2S, start, size, [7; 32], Instant::now()) {
        Admission::Refuse { records, reason } => {
            assert!(reason.contains("more than"), "{reason}");
            let ops: Vec<(&str, Outcome)> = records
                .iter()
                .map(|r| (r.event.operation.as_str(), r.event.outcome))
                .collect();
            assert_eq!(
                ops,
                [
                    ("oversized_frame", Outcome::Denied),
                    ("echo", Outcome::Denied)
                ]
            );
        }
        Admission::Forward(records) => panic!("forwarded: {records:#?}"),
    }
    let mut i = interpreter(false);
    let Admission::Forward(records) = i.admit_oversize(C2S, start, size, [7; 32], Instant::now())
    else {
        panic!("refused in batch")
    };
    assert_eq!(records[0].event.operation, "oversized_frame");
    let done = i.frame(S2C, br#"{"id":3,"result":{}}"#, Instant::now());
    assert_eq!(done[0].event.operation, "echo");
    assert_eq!(done[0].event.payload.input.as_ref().unwrap()["size"], size);
}

#[test]
fn a_notification_flood_is_counted_per_second_and_the_counts_add_up() {
    let mut i = interpreter(false);
    let t0 = Instant::now();
    let sent = 50_000u64;
    let mut records = Vec::new();
    for n in 0..sent {
        // Five seconds' worth, ten thousand a second.
        let at = t0 + Duration::from_micros(n * 100);
        let frame =
            format!(r#"{{"jsonrpc":"2.0","method":"notifications/flood","params":{{"n":{n}}}}}"#);
        records.extend(i.frame(C2S, frame.as_bytes(), at));
    }
    records.extend(i.finish("done", None, t0 + Duration::from_secs(6)));
    let flood: Vec<&Record> = records
        .iter()
        .filter(|r| r.event.operation == "notifications/flood")
        .collect();
    assert!(flood.len() <= 5 * 11, "{} events", flood.len());
    let counted: u64 = flood
        .iter()
        .map(|r| {
            let details = r.event.payload.details.as_ref().unwrap();
            if details["aggregated"] == true {
                assert!(details["sample"]["n"].is_u64());
                details["count"].as_u64().unwrap()
            } else {
                1
            }
        })
        .sum();
    assert_eq!(counted, sent);
}

// ---- Generated hostile frames ----

/// A value an attacker may put in arguments: JSON text, not always valid.
fn hostile_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0usize..300).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        (0usize..300)
            .prop_map(|n| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)).into_bytes()),
        Just(b"1e400".to_vec()),
        Just(b"-123456789012345678901234567890".to_vec()),
        Just(br#""\ud800""#.to_vec()),
        Just(br#""\udfff\ud800\u""#.to_vec()),
        Just(b"\"\xff\xfe\xc3\"".to_vec()),
        Just(b"NaN".to_vec()),
        Just(b"{\"a\":1,\"a\":2}".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
        "[a-z\\\\\"{}\\[\\],:0-9 ]{0,40}".prop_map(String::into_bytes),
    ]
}

/// One request (id from a small pool, so that ids collide) or notification, as JSON text.
fn hostile_message() -> impl Strategy<Value = (Option<u8>, Vec<u8>)> {
    let method = prop_oneof![
        Just("tools/call"),
        Just("resources/read"),
        Just("prompts/get"),
        Just("tools/list"),
        Just(""),
        Just("notifications/flood"),
    ];
    let name = prop_oneof![
        Just(r#""echo""#),
        Just(r#""""#),
        Just(r#"" ""#),
        Just("5"),
        Just(r#""a\ud800""#)
    ];
    (proptest::option::of(0u8..4), method, name, hostile_value()).prop_map(
        |(id, method, name, arguments)| {
            let id_text = id.map(|id| format!(r#""id":{id},"#)).unwrap_or_default();
            let mut text = format!(
                r#"{{"jsonrpc":"2.0",{id_text}"method":"{method}","params":{{"name":{name},"uri":"file:///x","arguments":"#
            )
            .into_bytes();
            text.extend_from_slice(&arguments);
            text.extend_from_slice(b"}}");
            (id, text)
        },
    )
}

/// A frame of one to three messages (a batch when more than one), perhaps cut short.
fn hostile_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(hostile_message(), 1..4),
        proptest::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(|(messages, cut)| {
            let mut frame = Vec::new();
            let batch = messages.len() > 1;
            if batch {
                frame.push(b'[');
            }
            for (n, (_, text)) in messages.iter().enumerate() {
                if n > 0 {
                    frame.push(b',');
                }
                frame.extend_from_slice(text);
            }
            if batch {
                frame.push(b']');
            }
            if let Some(cut) = cut {
                frame.truncate(cut.index(frame.len() + 1));
            }
            frame
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Whatever the client sends, nothing panics, and every request it sent is on record by
    /// the end of the session: in `sync`, held behind its intent or refused with a `denied`
    /// record; in `batch`, as its operation.
    #[test]
    fn every_request_forwarded_is_on_record_and_every_refusal_is_denied(
        frames in proptest::collection::vec(hostile_frame(), 1..6),
        sync in any::<bool>(),
        answers in proptest::collection::vec(0u8..4, 0..4),
    ) {
        let mut i = interpreter(sync);
        let mut requests_forwarded: HashSet<String> = HashSet::new();
        let mut on_record: HashSet<String> = HashSet::new();
        let mut all = Vec::new();
        for (n, frame) in frames.iter().enumerate() {
            let read = mcp_audit_proxy::jsonrpc::parse_elements(frame);
            match i.admit(C2S, frame, Instant::now()) {
                Admission::Refuse { records, reason } => {
                    prop_assert!(sync, "refused in batch: {reason}");
                    prop_assert!(!records.is_empty());
                    prop_assert!(records.iter().all(|r| r.event.outcome == Outcome::Denied));
                }
                Admission::Forward(records) => {
                    // Forwarded: every message was read (in `sync`; a blank line has none),
                    // and each request's id is now in flight (its intent, if any, among the
                    // records).
                    if sync && !frame.iter().all(u8::is_ascii_whitespace) {
                        prop_assert!(read.as_ref().is_ok_and(|m| m.iter().all(Result::is_ok)));
                    }
                    for m in read.into_iter().flatten().flatten() {
                        if let mcp_audit_proxy::jsonrpc::Message::Request { id, method, .. } = m
                            && !matches!(method.as_str(), "ping" | "initialize") {
                                requests_forwarded.insert(id.0);
                            }
                    }
                    all.extend(records);
                }
            }
            if let Some(id) = answers.get(n) {
                let answer = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#);
                all.extend(i.frame(S2C, answer.as_bytes(), Instant::now()));
            }
        }
        all.extend(i.finish("end", None, Instant::now()));
        for r in &all {
            if r.event.outcome != Outcome::Pending
                && let Some(id) = &r.event.request_id {
                on_record.insert(id.clone());
            }
            // Every record is one the store takes.
            prop_assert!(r.event.clone().normalize().is_ok(), "{:?}", r.event);
        }
        for id in &requests_forwarded {
            prop_assert!(on_record.contains(id), "request {id} has no outcome on record");
        }
    }
}

#[test]
fn a_flood_of_junk_refused_in_sync_is_counted_and_the_counts_add_up() {
    let mut i = interpreter(true);
    let sent = 5_000u64;
    let mut records = Vec::new();
    for n in 0..sent {
        let (denied, _) = refused(&mut i, format!("junk {n}").as_bytes());
        records.extend(denied);
    }
    records.extend(i.finish("done", None, Instant::now()));
    let refusals: Vec<&Record> = records
        .iter()
        .filter(|r| r.event.operation == "refused_frame")
        .collect();
    assert!(refusals.len() < 200, "{} events", refusals.len());
    let counted: u64 = refusals
        .iter()
        .map(|r| {
            assert_eq!(r.event.outcome, Outcome::Denied);
            let details = r.event.payload.details.as_ref().unwrap();
            if details["aggregated"] == true {
                details["count"].as_u64().unwrap()
            } else {
                1
            }
        })
        .sum();
    assert_eq!(counted, sent);
}
