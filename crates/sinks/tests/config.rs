//! The sinks' configuration file: a good file gives its sinks; a bad one is refused with the
//! file, the line of the sink it is about, and what is wrong.

use std::path::Path;

use mcp_audit_sinks::config::{Built, KindConfig, load, parse};
use mcp_audit_sinks::runner::Start;

const GOOD: &str = r#"
[[sink]]
name = "siem"
type = "webhook"
url = "https://siem.example/hooks/mcp-audit"
secret = "s3cret"
batch = 50
max_tries = 4
start = "end"
logs = ["proxy-a"]

[[sink]]
name = "tail"
type = "stdout"
"#;

fn error(text: &str) -> String {
    match parse(Path::new("sinks.toml"), text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_good_file_gives_each_sink_with_its_settings_and_defaults() {
    let sinks = parse(Path::new("sinks.toml"), GOOD).unwrap();
    assert_eq!(sinks.len(), 2);
    let siem = &sinks[0];
    assert_eq!(
        (
            siem.spec.name.as_str(),
            siem.spec.batch,
            siem.spec.max_tries
        ),
        ("siem", 50, 4)
    );
    assert_eq!(siem.spec.start, Start::End);
    assert_eq!(
        siem.spec.logs.as_deref(),
        Some(&["proxy-a".to_string()][..])
    );
    assert!(matches!(&siem.kind, KindConfig::Webhook(w) if w.url.ends_with("/mcp-audit")));
    let tail = &sinks[1];
    assert_eq!(
        (tail.spec.batch, tail.spec.max_tries, tail.spec.start),
        (100, 5, Start::Beginning)
    );
    assert_eq!(tail.spec.lease, std::time::Duration::from_secs(15));
    assert!(matches!(tail.kind, KindConfig::Stdout(_)));
    assert_eq!(tail.line, 12, "the line of its [[sink]] header");
}

#[test]
fn an_unknown_type_is_refused_with_the_file_and_line() {
    let e = error("[[sink]]\nname = \"x\"\ntype = \"carrier-pigeon\"\n");
    assert!(e.starts_with("sinks.toml:1: sink `x`:"), "{e}");
    assert!(e.contains("carrier-pigeon"), "{e}");
}

#[test]
fn an_unknown_field_is_refused_not_ignored() {
    let e = error(&format!(
        "{GOOD}\n[[sink]]\nname = \"y\"\ntype = \"stdout\"\nmax_trys = 3\n"
    ));
    assert!(e.starts_with("sinks.toml:16: sink `y`:"), "{e}");
    assert!(e.contains("max_trys"), "{e}");
    let e = error(
        "[[sink]]\nname = \"z\"\ntype = \"webhook\"\nurl = \"http://h/\"\nsecret = \"s\"\nsecrett = \"t\"\n",
    );
    assert!(
        e.contains("sinks.toml:1: sink `z`") && e.contains("secrett"),
        "{e}"
    );
    let e = error("[[sinks]]\nname = \"z\"\n");
    assert!(e.contains("sinks.toml:1") && e.contains("sinks"), "{e}");
}

#[test]
fn settings_out_of_range_and_duplicate_names_are_refused() {
    assert!(error("[[sink]]\nname = \"a\"\ntype = \"stdout\"\nbatch = 0\n").contains("`batch`"));
    assert!(
        error("[[sink]]\nname = \"a\"\ntype = \"stdout\"\nmax_tries = 0\n").contains("`max_tries`")
    );
    let twice =
        "[[sink]]\nname = \"a\"\ntype = \"stdout\"\n[[sink]]\nname = \"a\"\ntype = \"stdout\"\n";
    assert!(
        error(twice).starts_with("sinks.toml:4:"),
        "{}",
        error(twice)
    );
    assert!(
        error("[[sink]]\nname = \"a\"\ntype = \"stdout\"\nlease_ms = 99\n").contains("`lease_ms`")
    );
    assert!(error("[[sink]]\nname = \"a\"\n").contains("missing field `type`"));
    assert!(error("").contains("no [[sink]]"));
    assert!(
        error("[[sink]]\nname = \"a\"\ntype = \"stdout\"\nredact_policy = \"missing.toml\"\n")
            .contains("missing.toml")
    );
}

#[test]
fn a_webhook_without_a_secret_or_with_a_bad_url_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sinks.toml");
    std::fs::write(
        &path,
        "[[sink]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n",
    )
    .unwrap();
    let e = load(&path).err().unwrap().to_string();
    assert!(
        e.contains("sinks.toml:1: sink `h`") && e.contains("secret"),
        "{e}"
    );
    std::fs::write(
        &path,
        "[[sink]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"ftp://x/\"\nsecret = \"s\"\n",
    )
    .unwrap();
    let e = load(&path).err().unwrap().to_string();
    assert!(e.contains("ftp://x/"), "{e}");
    let e = load(&dir.path().join("absent.toml"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("absent.toml") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn otlp_and_syslog_sinks_are_kinds_of_the_file_built_into_their_destinations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sinks.toml");
    std::fs::write(
        &path,
        r#"
[[sink]]
name = "traces"
type = "otlp"
endpoint = "http://127.0.0.1:4318"
protocol = "grpc"
signals = "spans"
batch = 20

[[sink]]
name = "siem"
type = "syslog"
address = "127.0.0.1:6514"
format = "leef"
"#,
    )
    .unwrap();
    let sinks = load(&path).unwrap();
    let kinds: Vec<&str> = sinks
        .iter()
        .map(|(_, built)| match built {
            Built::Records(kind) => mcp_audit_sinks::Destination::kind(kind),
            Built::Witness(_) => "witness",
        })
        .collect();
    assert_eq!(kinds, ["otlp", "syslog"]);
    assert_eq!(
        sinks[0].0.spec.batch, 20,
        "the common fields stay the runner's"
    );
    assert!(matches!(sinks[1].0.kind, KindConfig::Syslog(_)));
}

#[test]
fn an_otlp_or_syslog_field_that_does_not_exist_is_refused_at_its_sinks_line() {
    let otlp = error(
        r#"
[[sink]]
name = "traces"
type = "otlp"
endpoint = "http://127.0.0.1:4318"
endpiont = "typo"
"#,
    );
    assert!(
        otlp.starts_with("sinks.toml:2:") && otlp.contains("endpiont"),
        "{otlp}"
    );
    let syslog = error(
        r#"
[[sink]]
name = "siem"
type = "syslog"
address = "127.0.0.1:6514"
formt = "cef"
"#,
    );
    assert!(
        syslog.starts_with("sinks.toml:2:") && syslog.contains("formt"),
        "{syslog}"
    );
}

#[test]
fn a_witness_sink_is_a_kind_of_the_file_built_with_its_key_file_and_relative_path() {
    let dir = tempfile::tempdir().unwrap();
    let key = mcp_audit_core::cosignature::CosignatureSigner::generate("w.test/1")
        .unwrap()
        .verifier()
        .to_text();
    std::fs::write(dir.path().join("w.key.pub"), format!("{key}\n")).unwrap();
    let path = dir.path().join("sinks.toml");
    std::fs::write(
        &path,
        r#"
[[sink]]
name = "witness"
type = "witness"
target = "tlog-witness"
url = "http://127.0.0.1:1"
key = "w.key.pub"
poll_ms = 250
backoff_max_ms = 4000

[[sink]]
name = "elsewhere"
type = "witness"
target = "file"
path = "checkpoints.jsonl"
"#,
    )
    .unwrap();
    let sinks = load(&path).unwrap();
    assert!(matches!(sinks[0].1, Built::Witness(_)));
    assert_eq!(sinks[0].0.spec.poll.as_millis(), 250);
    assert_eq!(sinks[0].0.spec.backoff.max.as_millis(), 4000);
    match &sinks[0].0.kind {
        KindConfig::Witness(c) => assert_eq!(c.key.as_deref(), Some(key.as_str())),
        _ => panic!("not a witness"),
    }
    match &sinks[1].0.kind {
        KindConfig::Witness(c) => {
            assert_eq!(
                c.path.as_deref(),
                Some(dir.path().join("checkpoints.jsonl").as_path())
            )
        }
        _ => panic!("not a witness"),
    }
}

#[test]
fn a_witness_sink_refuses_the_fields_about_records_and_a_bad_target_at_its_line() {
    for field in [
        "batch = 10",
        "max_tries = 2",
        "start = \"end\"",
        "logs = [\"a\"]",
        "redact_policy = \"p.toml\"",
    ] {
        let text = format!(
            "[[sink]]\nname = \"tail\"\ntype = \"stdout\"\n\n[[sink]]\nname = \"w\"\ntype = \"witness\"\ntarget = \"file\"\npath = \"x\"\n{field}\n"
        );
        let e = error(&text);
        let name = field.split(' ').next().unwrap();
        assert!(
            e.starts_with("sinks.toml:5: sink `w`: ")
                && e.contains(&format!("`{name}` is about records")),
            "{e}"
        );
    }
    let unknown = error("[[sink]]\nname = \"w\"\ntype = \"witness\"\ntarget = \"s3\"\n");
    assert!(
        unknown.starts_with("sinks.toml:1: sink `w`:") && unknown.contains("s3"),
        "{unknown}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sinks.toml");
    std::fs::write(
        &path,
        "[[sink]]\nname = \"tail\"\ntype = \"stdout\"\n\n[[sink]]\nname = \"w\"\ntype = \"witness\"\ntarget = \"tlog-witness\"\nurl = \"http://127.0.0.1:1\"\n",
    )
    .unwrap();
    let missing = match load(&path) {
        Ok(_) => panic!("a tlog-witness without a key was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        missing.ends_with(
            "sinks.toml:5: sink `w`: witness configuration: target `tlog-witness` needs `key`"
        ),
        "{missing}"
    );
}
