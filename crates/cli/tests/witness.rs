//! Witnesses, end to end with real processes: `mcp-audit serve --witness-key` is the witness
//! (C2SP tlog-witness), `mcp-audit witness push` sends a log's checkpoints to it, and
//! `mcp-audit verify --witness` requires its cosignature. A log that forks or is cut back after
//! a cosignature gets none again, and `verify --witness` fails on it; malformed submissions are
//! refused and change nothing; of two submissions that extend the same size, one wins.
//! `mcp-audit follow --sink FILE` runs witnesses as sinks (`type = "witness"`): checkpoints
//! made while it runs get co-signed, a witness that was down is caught up with, a follow killed
//! with SIGKILL resumes, and a fork is refused while the other sinks run on; on PostgreSQL the
//! same for every log of the database, beside the logs' running writers.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use support::BIN;
use support::follow::terminate;
use support::witness::Witness;

/// The origin the test logs sign their checkpoints with.
const ORIGIN: &str = "log.test/a";
/// The origin of a second log, which the witness also trusts (a log of its own, not a fork).
const ORIGIN_B: &str = "log.test/b";

/// A temp dir with a log key, a witness key and a running witness that trusts the log key.
struct Setup {
    dir: tempfile::TempDir,
    witness: Witness,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        ok(run(
            dir.path(),
            &["keygen", "--name", "log.test", "--out", &path("log.key")],
        ));
        // Another witness's key, which the running witness does not hold.
        ok(run(
            dir.path(),
            &[
                "witness",
                "keygen",
                "--name",
                "witness.test/w2",
                "--out",
                &path("other.key"),
            ],
        ));
        let witness = Witness::start(
            dir.path(),
            "witness.test/w1",
            &[
                format!("{ORIGIN}={}", path("log.key.pub")),
                format!("{ORIGIN_B}={}", path("log.key.pub")),
            ],
        );
        Setup { dir, witness }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Stops the witness as a crash would.
    fn stop_witness(&mut self) {
        self.witness.stop();
    }

    /// Starts the witness again, at the address it had (its URL is in the sinks' file).
    fn start_witness(&mut self) {
        self.witness.restart();
    }

    /// `follow --sink sinks.toml` on `db`, its log on the test's stderr.
    fn follow(&self, db: &str) -> Child {
        self.follow_db(&self.path(db))
    }

    /// `follow --sink sinks.toml` with `--db db_arg` (a file path or a URL).
    fn follow_db(&self, db_arg: &str) -> Child {
        Command::new(BIN)
            .current_dir(self.dir.path())
            .args(["--db", db_arg, "follow", "--sink", "sinks.toml"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    }

    /// Writes sinks.toml: a sink `witness` of this witness, and the tables in `more`.
    fn sinks(&self, more: &str) {
        let config = format!(
            "[[sink]]\nname = \"witness\"\ntype = \"witness\"\ntarget = \"tlog-witness\"\n\
             url = \"{}\"\nkey = \"w.key.pub\"\npoll_ms = 100\nbackoff_initial_ms = 100\n\
             backoff_max_ms = 400\n{more}",
            self.witness.base
        );
        std::fs::write(self.path("sinks.toml"), config).unwrap();
    }

    /// `sink status --json` of `db`: the row of sink `name`.
    fn status(&self, db: &str, name: &str) -> Option<serde_json::Value> {
        self.status_rows(&self.path(db))
            .into_iter()
            .find(|row| row["sink"] == name)
    }

    /// `sink status --json` with `--db db_arg`: every row (one per sink and log).
    fn status_rows(&self, db_arg: &str) -> Vec<serde_json::Value> {
        status_rows(self.dir.path(), db_arg)
    }

    /// Waits (a minute at most: a bound on a hang, not a measure of speed) until sink `name`
    /// of `db` satisfies `done`; its last row.
    fn wait_status(
        &self,
        db: &str,
        name: &str,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let row = self.status(db, name);
            if let Some(row) = &row
                && done(row)
            {
                return row.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sink `{name}` never got {what}: {row:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The sizes of the checkpoints in the file `name` (one JSON object a line).
    fn file_sizes(&self, name: &str) -> Vec<u64> {
        std::fs::read_to_string(self.path(name))
            .unwrap()
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["size"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    fn port(&self) -> u16 {
        self.witness.port()
    }

    /// Records `n` events named `{tag}{i}` in `db` and signs a checkpoint: the note.
    fn grow(&self, db: &str, tag: &str, n: usize) -> String {
        log_events(self.dir.path(), db, tag, n);
        let out = run(
            self.dir.path(),
            &[
                "--db",
                &self.path(db),
                "checkpoint",
                "--key",
                &self.path("log.key"),
                "--origin",
                ORIGIN,
            ],
        );
        String::from_utf8(ok(out).stdout).unwrap()
    }

    fn push(&self, db: &str) -> Output {
        run(
            self.dir.path(),
            &[
                "--db",
                &self.path(db),
                "witness",
                "push",
                "--url",
                &self.witness.base,
                "--key",
                &self.path("w.key.pub"),
            ],
        )
    }

    fn verify(&self, db: &str, witness_keys: &[&str]) -> Output {
        let mut args = vec![
            "--db".to_string(),
            self.path(db),
            "verify".into(),
            "--no-record".into(),
            "--key".into(),
            self.path("log.key.pub"),
        ];
        for key in witness_keys {
            args.push("--witness".into());
            args.push(self.path(key));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(self.dir.path(), &args)
    }

    fn copy(&self, from: &str, to: &str) {
        // A consistent copy of a SQLite file in WAL mode, as a backup would take it.
        let conn = rusqlite::Connection::open(self.path(from)).unwrap();
        conn.execute("VACUUM INTO ?1", [self.path(to)]).unwrap();
    }

    /// The witness's stored state: (origin, size) rows.
    fn witnessed(&self) -> Vec<(String, i64)> {
        self.witness.witnessed()
    }

    /// A consistency proof of `db` from `old` to `new`, as the tlog-witness body's lines.
    fn proof_lines(&self, db: &str, old_note: &str, new_note: &str) -> String {
        let (old, new) = (self.path("old.note"), self.path("new.note"));
        std::fs::write(&old, old_note).unwrap();
        std::fs::write(&new, new_note).unwrap();
        let out = ok(run(
            self.dir.path(),
            &[
                "--db",
                &self.path(db),
                "consistency",
                &old,
                &new,
                "--key",
                &self.path("log.key.pub"),
            ],
        ));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                format!(
                    "{}\n",
                    STANDARD.encode(hex::decode(h.as_str().unwrap()).unwrap())
                )
            })
            .collect()
    }
}

/// `sink status --json` with `--db db_arg`, run in `dir`: every row (one per sink and log).
fn status_rows(dir: &Path, db_arg: &str) -> Vec<serde_json::Value> {
    let out = ok(run(dir, &["--db", db_arg, "sink", "status", "--json"]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["sinks"].as_array().unwrap().clone()
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn log_events(dir: &Path, db: &str, tag: &str, n: usize) {
    let db: PathBuf = dir.join(db);
    for i in 0..n {
        let event =
            format!(r#"{{"kind":"tool_execution","action":"EXECUTE","operation":"{tag}{i}"}}"#);
        ok(run(
            dir,
            &["--db", &db.display().to_string(), "log", &event],
        ));
    }
}

/// `POST path` with `body` to 127.0.0.1:`port`: status, head (lower-case), body.
fn post(port: u16, path: &str, body: &[u8]) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: text/plain\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    (
        status,
        head,
        String::from_utf8_lossy(&out[split + 4..]).into_owned(),
    )
}

#[test]
fn a_pushed_log_is_cosigned_and_verify_witness_passes_until_a_checkpoint_is_not_pushed() {
    let s = Setup::new();
    s.grow("a.db", "a", 3);
    let pushed = ok(s.push("a.db"));
    assert!(
        text(&pushed).contains("co-signed checkpoint 3: \u{2014} witness.test/w1 "),
        "{}",
        text(&pushed)
    );
    assert_eq!(s.witnessed(), vec![(ORIGIN.to_string(), 3)]);
    let verified = ok(s.verify("a.db", &["w.key.pub"]));
    assert!(
        text(&verified).contains("witnessed:"),
        "{}",
        text(&verified)
    );
    // Pushing again sends nothing; growing and pushing goes through with a consistency proof.
    assert!(text(&ok(s.push("a.db"))).contains("up to date"));
    s.grow("a.db", "a-more", 2);
    assert!(text(&ok(s.push("a.db"))).contains("co-signed checkpoint 5"));
    assert_eq!(s.witnessed(), vec![(ORIGIN.to_string(), 5)]);
    ok(s.verify("a.db", &["w.key.pub"]));
    // Another witness's key was never asked: verify fails, naming it.
    let other = s.verify("a.db", &["w.key.pub", "other.key.pub"]);
    assert_eq!(other.status.code(), Some(1), "{}", text(&other));
    assert!(
        text(&other).contains("WITNESS witness witness.test/w2+"),
        "{}",
        text(&other)
    );
    // A checkpoint signed after the last push is not co-signed: verify fails until pushed.
    s.grow("a.db", "a-late", 1);
    let late = s.verify("a.db", &["w.key.pub"]);
    assert_eq!(late.status.code(), Some(1), "{}", text(&late));
    assert!(
        text(&late).contains("the newest checkpoint (6 entries) is not co-signed"),
        "{}",
        text(&late)
    );
    ok(s.push("a.db"));
    ok(s.verify("a.db", &["w.key.pub"]));
}

#[test]
fn a_forked_log_is_refused_by_the_witness_and_fails_verify_witness() {
    let s = Setup::new();
    s.grow("a.db", "a", 3);
    ok(s.push("a.db"));
    // The fork: a copy of the log as co-signed at 3, then other entries than the original's.
    s.copy("a.db", "fork.db");
    s.grow("a.db", "a", 2);
    ok(s.push("a.db"));
    s.grow("fork.db", "forged", 2);
    // Same size, another root: 409 (after the client retried from the witness's size).
    let refused = s.push("fork.db");
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("HTTP 409") && text(&refused).contains("forked"),
        "{}",
        text(&refused)
    );
    // A larger forked tree: its consistency proof from the witness's 5 does not hold, 422.
    s.grow("fork.db", "forged-more", 1);
    let refused = s.push("fork.db");
    assert!(!refused.status.success());
    assert!(text(&refused).contains("HTTP 422"), "{}", text(&refused));
    assert_eq!(s.witnessed(), vec![(ORIGIN.to_string(), 5)]);
    let verified = s.verify("fork.db", &["w.key.pub"]);
    assert_eq!(verified.status.code(), Some(1), "{}", text(&verified));
    assert!(
        text(&verified).contains("is not co-signed"),
        "{}",
        text(&verified)
    );
    // The original still verifies.
    ok(s.verify("a.db", &["w.key.pub"]));
}

#[test]
fn a_log_cut_back_to_an_older_copy_is_refused_by_the_witness_and_fails_verify_witness() {
    let s = Setup::new();
    s.grow("a.db", "a", 3);
    ok(s.push("a.db"));
    s.copy("a.db", "backup.db");
    s.grow("a.db", "a", 3);
    ok(s.push("a.db"));
    // The older copy restored, one entry recorded and a smaller checkpoint (4) signed.
    s.grow("backup.db", "after-restore", 1);
    let refused = s.push("backup.db");
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("larger than its newest checkpoint (4)")
            && text(&refused).contains("cut back"),
        "{}",
        text(&refused)
    );
    assert_eq!(s.witnessed(), vec![(ORIGIN.to_string(), 6)]);
    let verified = s.verify("backup.db", &["w.key.pub"]);
    assert_eq!(verified.status.code(), Some(1), "{}", text(&verified));
    assert!(
        text(&verified).contains("the newest checkpoint (4 entries) is not co-signed"),
        "{}",
        text(&verified)
    );
}

#[test]
fn malformed_untrusted_and_unknown_submissions_are_refused_and_store_nothing() {
    let s = Setup::new();
    let note = s.grow("a.db", "a", 2);
    let port = s.port();
    for body in [
        "garbage".to_string(),
        format!("old 01\n\n{note}"),
        format!("old 1\nnot base64\n\n{note}"),
        format!("old 0\n\n{}", note.replace("\n\n", "\n")),
        format!("old 3\n\n{note}"),
    ] {
        let (status, _, answer) = post(port, "/add-checkpoint", body.as_bytes());
        assert_eq!(status, 400, "{body:?}: {answer}");
    }
    // An origin the witness does not witness: 404.
    let other_origin = note.replacen(ORIGIN, "log.test/other", 1);
    let (status, _, _) = post(
        port,
        "/add-checkpoint",
        format!("old 0\n\n{other_origin}").as_bytes(),
    );
    assert_eq!(status, 404);
    // Signed by a key the witness does not trust for the origin (edited body): 403.
    let forged = note.replacen("\n2\n", "\n1\n", 1);
    let (status, _, _) = post(
        port,
        "/add-checkpoint",
        format!("old 0\n\n{forged}").as_bytes(),
    );
    assert_eq!(status, 403);
    // A body past the limit: 413.
    let (status, _, _) = post(port, "/add-checkpoint", &vec![b'a'; 70 * 1024]);
    assert_eq!(status, 413);
    assert!(s.witnessed().is_empty());
    // A correct first submission is co-signed, with the spec's answer: signature lines.
    let (status, _, answer) = post(
        port,
        "/add-checkpoint",
        format!("old 0\n\n{note}").as_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
    assert!(answer.starts_with("\u{2014} witness.test/w1 ") && answer.ends_with('\n'));
    // The same again from 0 now conflicts, with the size it knows as text/x.tlog.size.
    let (status, head, answer) = post(
        port,
        "/add-checkpoint",
        format!("old 0\n\n{note}").as_bytes(),
    );
    assert_eq!((status, answer.as_str()), (409, "2\n"));
    assert!(head.contains("content-type: text/x.tlog.size"), "{head}");
    assert_eq!(s.witnessed(), vec![(ORIGIN.to_string(), 2)]);
}

#[test]
fn of_two_submissions_that_extend_the_same_size_only_one_is_cosigned() {
    let s = Setup::new();
    let base = s.grow("a.db", "a", 2);
    let port = s.port();
    let (status, _, _) = post(
        port,
        "/add-checkpoint",
        format!("old 0\n\n{base}").as_bytes(),
    );
    assert_eq!(status, 200);
    let four = s.grow("a.db", "b", 2);
    let five = s.grow("a.db", "c", 1);
    let bodies = [
        format!("old 2\n{}\n{four}", s.proof_lines("a.db", &base, &four)),
        format!("old 2\n{}\n{five}", s.proof_lines("a.db", &base, &five)),
    ];
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let racers: Vec<_> = bodies
            .iter()
            .map(|body| {
                scope.spawn(move || {
                    let (status, _, answer) = post(port, "/add-checkpoint", body.as_bytes());
                    (status, answer)
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let won: Vec<usize> = (0..2).filter(|i| answers[*i].0 == 200).collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    let winner_size = [4, 5][won[0]];
    let loser = &answers[1 - won[0]];
    assert_eq!(loser, &(409, format!("{winner_size}\n")), "{answers:?}");
    assert_eq!(s.witnessed(), vec![(ORIGIN.to_string(), winner_size)]);
}

fn at(size: u64) -> impl Fn(&serde_json::Value) -> bool {
    move |row| row["cursor"] == size && row["last_error"].is_null()
}

#[test]
fn a_witness_sink_cosigns_checkpoints_made_while_follow_runs_and_catches_up_after_the_witness_was_down()
 {
    let mut s = Setup::new();
    s.grow("a.db", "a", 3);
    s.sinks("");
    let follow = s.follow("a.db");
    s.wait_status("a.db", "witness", "the checkpoint of 3", at(3));
    ok(s.verify("a.db", &["w.key.pub"]));
    // Records and a checkpoint made by other processes while the sink holds the file open.
    s.grow("a.db", "b", 2);
    s.wait_status("a.db", "witness", "the checkpoint of 5", at(5));
    ok(s.verify("a.db", &["w.key.pub"]));
    // The witness down: the checkpoint of 7 waits, and the sink says why.
    s.stop_witness();
    s.grow("a.db", "c", 2);
    let down = s.wait_status("a.db", "witness", "an error", |row| {
        row["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("unavailable"))
    });
    assert_eq!(down["cursor"], 5, "{down}");
    assert_eq!(down["size"], 7, "{down}");
    let late = s.verify("a.db", &["w.key.pub"]);
    assert_eq!(late.status.code(), Some(1), "{}", text(&late));
    // Back: the sink catches up without being told, and the error is cleared.
    s.start_witness();
    let caught_up = s.wait_status("a.db", "witness", "the checkpoint of 7", at(7));
    assert_eq!(caught_up["tries"], 0, "{caught_up}");
    assert_eq!(s.witnessed(), vec![(ORIGIN.to_string(), 7)]);
    ok(s.verify("a.db", &["w.key.pub"]));
    terminate(follow);
}

#[test]
fn a_follow_killed_mid_run_resumes_its_witness_sinks_missing_nothing_and_sending_nothing_twice() {
    let s = Setup::new();
    s.grow("a.db", "a", 3);
    s.sinks("\n[[sink]]\nname = \"copy\"\ntype = \"witness\"\ntarget = \"file\"\npath = \"copy.jsonl\"\npoll_ms = 100\n");
    let mut first = s.follow("a.db");
    s.wait_status("a.db", "witness", "the checkpoint of 3", at(3));
    s.wait_status("a.db", "copy", "the checkpoint of 3", at(3));
    first.kill().unwrap();
    first.wait().unwrap();
    // Two checkpoints signed while no sink runs.
    s.grow("a.db", "b", 2);
    s.grow("a.db", "c", 1);
    let second = s.follow("a.db");
    let witness = s.wait_status("a.db", "witness", "the checkpoint of 6", at(6));
    let copy = s.wait_status("a.db", "copy", "the checkpoint of 6", at(6));
    assert_eq!((&witness["tries"], &copy["tries"]), (&0.into(), &0.into()));
    // Each checkpoint once in the file, in order; the witness at the newest.
    assert_eq!(s.file_sizes("copy.jsonl"), [3, 5, 6]);
    assert_eq!(s.witnessed(), vec![(ORIGIN.to_string(), 6)]);
    ok(s.verify("a.db", &["w.key.pub"]));
    terminate(second);
    let checked = run(
        s.dir.path(),
        &[
            "--db",
            &s.path("a.db"),
            "verify",
            "--no-record",
            "--key",
            &s.path("log.key.pub"),
            "--checkpoints",
            &s.path("copy.jsonl"),
        ],
    );
    ok(checked);
}

#[test]
fn a_forked_log_is_refused_by_the_witness_sink_which_says_so_in_sink_status_while_the_others_run() {
    let s = Setup::new();
    s.grow("a.db", "a", 3);
    ok(s.push("a.db"));
    s.copy("a.db", "fork.db");
    s.grow("a.db", "a", 2);
    ok(s.push("a.db"));
    s.grow("fork.db", "forged", 2);
    s.sinks("\n[[sink]]\nname = \"copy\"\ntype = \"witness\"\ntarget = \"file\"\npath = \"fork.jsonl\"\npoll_ms = 100\n");
    let mut follow = s.follow("fork.db");
    let refused = s.wait_status("fork.db", "witness", "the witness's refusal", |row| {
        row["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("HTTP 409") && e.contains("forked"))
    });
    assert_eq!(
        refused["cursor"], 0,
        "nothing of the fork was co-signed: {refused}"
    );
    // The other sink runs on: a checkpoint signed now reaches the file.
    s.wait_status("fork.db", "copy", "the checkpoint of 5", at(5));
    s.grow("fork.db", "forged-more", 1);
    s.wait_status("fork.db", "copy", "the checkpoint of 6", at(6));
    let still = s.wait_status("fork.db", "witness", "the refusal of 6", |row| {
        row["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("HTTP 422"))
    });
    assert!(still["tries"].as_u64().unwrap() >= 2, "{still}");
    assert!(
        follow.try_wait().unwrap().is_none(),
        "follow ended on a refusal"
    );
    assert_eq!(s.witnessed(), vec![(ORIGIN.to_string(), 5)]);
    let table = text(&ok(run(
        s.dir.path(),
        &["--db", &s.path("fork.db"), "sink", "status"],
    )));
    assert!(table.contains("witness"), "{table}");
    terminate(follow);
}

#[test]
fn a_bad_witness_table_in_the_sinks_file_is_refused_with_its_line() {
    let s = Setup::new();
    s.grow("a.db", "a", 1);
    for (table, says) in [
        (
            "target = \"file\"\npath = \"x.jsonl\"\nbatch = 10\n",
            "`batch` is about records",
        ),
        (
            "target = \"tlog-witness\"\nurl = \"http://127.0.0.1:1\"\n",
            "target `tlog-witness` needs `key`",
        ),
        (
            "target = \"tlog-witness\"\nurl = \"http://127.0.0.1:1\"\nkey = \"log.key.pub\"\n",
            "the witness key",
        ),
        (
            "target = \"file\"\npth = \"x.jsonl\"\n",
            "unknown field `pth`",
        ),
    ] {
        std::fs::write(
            s.path("sinks.toml"),
            format!("[[sink]]\nname = \"tail\"\ntype = \"stdout\"\n\n[[sink]]\nname = \"w\"\ntype = \"witness\"\n{table}"),
        )
        .unwrap();
        let out = run(
            s.dir.path(),
            &["--db", &s.path("a.db"), "follow", "--sink", "sinks.toml"],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains("sinks.toml:5: sink `w`: ") && text(&out).contains(says),
            "{table}: {}",
            text(&out)
        );
    }
}

/// The PostgreSQL tests (in `postgres::`, which the runner counts as skipped without
/// `MCP_AUDIT_TEST_PG`).
#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use crate::support::spawn_serve;

    /// On PostgreSQL: the witness keeps its state in a PostgreSQL database, the logs are logs of
    /// one, and push, verify and the witness's refusal of a shorter history work as on SQLite.
    #[test]
    fn a_pushed_log_is_cosigned_and_a_shorter_history_is_refused() {
        let Some(pg) = support::PgSchema::new("witness") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        ok(run(
            dir.path(),
            &["keygen", "--name", "log.test", "--out", &path("log.key")],
        ));
        ok(run(
            dir.path(),
            &[
                "witness",
                "keygen",
                "--name",
                "witness.test/w1",
                "--out",
                &path("w.key"),
            ],
        ));
        let in_log = |args: &[&str]| -> Output {
            let mut all = vec!["--db", pg.url.as_str(), "--log-id", "log-a"];
            all.extend_from_slice(args);
            run(dir.path(), &all)
        };
        let grow = |n: usize| {
            for i in 0..n {
                let event = format!(
                    r#"{{"kind":"tool_execution","action":"EXECUTE","operation":"pg{i}"}}"#
                );
                ok(in_log(&["log", &event]));
            }
            ok(in_log(&[
                "checkpoint",
                "--key",
                &path("log.key"),
                "--origin",
                ORIGIN,
            ]));
        };
        grow(3);
        let mut serve = Command::new(BIN);
        serve.args(["--db", &pg.url]);
        let (mut witness, base) = spawn_serve(
            serve,
            &[
                "--witness-key",
                &path("w.key"),
                "--witness-trust",
                &format!("{ORIGIN}={}", path("log.key.pub")),
            ],
        );
        let push = || {
            in_log(&[
                "witness",
                "push",
                "--url",
                &base,
                "--key",
                &path("w.key.pub"),
            ])
        };
        let verify = || {
            in_log(&[
                "verify",
                "--no-record",
                "--key",
                &path("log.key.pub"),
                "--witness",
                &path("w.key.pub"),
            ])
        };
        assert!(text(&ok(push())).contains("co-signed checkpoint 3"));
        ok(verify());
        grow(2);
        assert!(text(&ok(push())).contains("co-signed checkpoint 5"));
        ok(verify());
        // Another history under the same origin and key, shorter than what was co-signed: a log
        // rebuilt from scratch (or cut back) and signed again. The witness refuses it.
        let in_other = |args: &[&str]| -> Output {
            let mut all = vec!["--db", pg.url.as_str(), "--log-id", "log-b"];
            all.extend_from_slice(args);
            run(dir.path(), &all)
        };
        for i in 0..4 {
            let event =
                format!(r#"{{"kind":"tool_execution","action":"EXECUTE","operation":"other{i}"}}"#);
            ok(in_other(&["log", &event]));
        }
        ok(in_other(&[
            "checkpoint",
            "--key",
            &path("log.key"),
            "--origin",
            ORIGIN,
        ]));
        let refused = in_other(&[
            "witness",
            "push",
            "--url",
            &base,
            "--key",
            &path("w.key.pub"),
        ]);
        assert!(!refused.status.success());
        assert!(text(&refused).contains("cut back"), "{}", text(&refused));
        let verified = in_other(&[
            "verify",
            "--no-record",
            "--key",
            &path("log.key.pub"),
            "--witness",
            &path("w.key.pub"),
        ]);
        assert_eq!(verified.status.code(), Some(1), "{}", text(&verified));
        let mut client = ::postgres::Client::connect(&pg.url, ::postgres::NoTls).unwrap();
        let witnessed: i64 = client
            .query_one("SELECT size FROM witnessed WHERE origin = $1", &[&ORIGIN])
            .unwrap()
            .get(0);
        assert_eq!(witnessed, 5);
        // The original log still verifies.
        ok(verify());
        let _ = witness.kill();
        let _ = witness.wait();
    }

    /// A log of the PostgreSQL database `pg`: records and checkpoints made by other processes.
    struct PgLog<'a> {
        /// The test's directory (keys, sinks file).
        dir: PathBuf,
        url: &'a str,
        log_id: &'a str,
        origin: &'a str,
    }

    impl PgLog<'_> {
        fn run(&self, args: &[&str]) -> Output {
            let mut all = vec!["--db", self.url, "--log-id", self.log_id];
            all.extend_from_slice(args);
            run(&self.dir, &all)
        }

        /// Records `n` events named `{tag}{i}` and signs a checkpoint under the log's origin.
        fn grow(&self, tag: &str, n: usize) {
            for i in 0..n {
                let event = format!(
                    r#"{{"kind":"tool_execution","action":"EXECUTE","operation":"{tag}{i}"}}"#
                );
                ok(self.run(&["log", &event]));
            }
            let key = self.dir.join("log.key").display().to_string();
            ok(self.run(&["checkpoint", "--key", &key, "--origin", self.origin]));
        }

        /// `verify --witness w.key.pub` of this log alone.
        fn verify(&self) -> Output {
            let path = |name: &str| self.dir.join(name).display().to_string();
            let (key, witness) = (path("log.key.pub"), path("w.key.pub"));
            self.run(&[
                "verify",
                "--no-record",
                "--key",
                &key,
                "--witness",
                &witness,
            ])
        }

        /// Waits (a minute at most: a bound on a hang, not a measure of speed) until the row
        /// of sink `name` for this log satisfies `done`; the row.
        fn wait(
            &self,
            name: &str,
            what: &str,
            done: impl Fn(&serde_json::Value) -> bool,
        ) -> serde_json::Value {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let row = status_rows(&self.dir, self.url)
                    .into_iter()
                    .find(|row| row["sink"] == name && row["log_id"] == self.log_id);
                if let Some(row) = &row
                    && done(row)
                {
                    return row.clone();
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "sink `{name}` of log {} never got {what}: {row:?}",
                    self.log_id
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// The log ids of the database.
    fn pg_logs(url: &str) -> Vec<String> {
        let mut client = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
        client
            .query("SELECT log_id FROM logs ORDER BY log_id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// On PostgreSQL a witness sink follows every log of the database, those started while it
    /// runs too, beside the logs' own writers (each `log` and `checkpoint` below takes its
    /// log's writer lock while `follow` runs), with a cursor per log; a witness that was down is
    /// caught up with; a file target writes one file per log.
    #[test]
    fn a_witness_sink_cosigns_every_log_made_while_follow_runs_and_catches_up_after_the_witness_was_down()
     {
        let Some(pg) = support::PgSchema::new("witness_sink_pg") else {
            return;
        };
        let mut s = Setup::new();
        let (a, b) = (
            PgLog {
                dir: s.dir.path().to_path_buf(),
                url: &pg.url,
                log_id: "log-a",
                origin: ORIGIN,
            },
            PgLog {
                dir: s.dir.path().to_path_buf(),
                url: &pg.url,
                log_id: "log-b",
                origin: ORIGIN_B,
            },
        );
        a.grow("a", 3);
        s.sinks("\n[[sink]]\nname = \"copy\"\ntype = \"witness\"\ntarget = \"file\"\npath = \"copy-{log}.jsonl\"\npoll_ms = 100\n");
        let follow = s.follow_db(&pg.url);
        a.wait("witness", "the checkpoint of 3", at(3));
        ok(a.verify());
        // A log started after follow, and a checkpoint of the first made meanwhile.
        b.grow("b", 2);
        a.grow("a-more", 2);
        b.wait("witness", "the checkpoint of 2", at(2));
        a.wait("witness", "the checkpoint of 5", at(5));
        ok(a.verify());
        ok(b.verify());
        // The witness down: log-b's checkpoint of 4 waits, and its row says why.
        s.stop_witness();
        b.grow("b-more", 2);
        let down = b.wait("witness", "an error", |row| {
            row["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("unavailable"))
        });
        assert_eq!(
            (&down["cursor"], &down["size"]),
            (&2.into(), &4.into()),
            "{down}"
        );
        assert_eq!(b.verify().status.code(), Some(1));
        // Back: caught up without being told, the error cleared.
        s.start_witness();
        let caught_up = b.wait("witness", "the checkpoint of 4", at(4));
        assert_eq!(caught_up["tries"], 0, "{caught_up}");
        assert_eq!(
            s.witnessed(),
            vec![(ORIGIN.to_string(), 5), (ORIGIN_B.to_string(), 4)]
        );
        ok(a.verify());
        ok(b.verify());
        // One file per log, each checkpoint once, in order.
        b.wait("copy", "the checkpoint of 4", at(4));
        assert_eq!(s.file_sizes("copy-log-a.jsonl"), [3, 5]);
        assert_eq!(s.file_sizes("copy-log-b.jsonl"), [2, 4]);
        terminate(follow);
        // The sinks made no log of their own.
        assert_eq!(pg_logs(&pg.url), ["log-a", "log-b"]);
    }

    /// On PostgreSQL a log that forks another's history under its origin is refused by the
    /// witness; `sink status` shows that log's row with the refusal while the other logs flow.
    #[test]
    fn a_forked_log_is_refused_by_the_witness_sink_and_shown_in_sink_status_while_the_other_logs_flow()
     {
        let Some(pg) = support::PgSchema::new("witness_fork_pg") else {
            return;
        };
        let s = Setup::new();
        let log = |log_id, origin| PgLog {
            dir: s.dir.path().to_path_buf(),
            url: &pg.url,
            log_id,
            origin,
        };
        let (a, b, fork) = (
            log("log-a", ORIGIN),
            log("log-b", ORIGIN_B),
            log("log-fork", ORIGIN),
        );
        a.grow("a", 3);
        s.sinks("");
        let follow = s.follow_db(&pg.url);
        a.wait("witness", "the checkpoint of 3", at(3));
        // Another history signed under log-a's origin and key.
        fork.grow("forged", 5);
        let refused = fork.wait("witness", "the witness's refusal", |row| {
            row["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("refused checkpoint 5"))
        });
        assert_eq!(
            refused["cursor"], 0,
            "nothing of the fork was co-signed: {refused}"
        );
        // The other logs flow on.
        b.grow("b", 2);
        a.grow("a-more", 2);
        b.wait("witness", "the checkpoint of 2", at(2));
        a.wait("witness", "the checkpoint of 5", at(5));
        let still = fork.wait("witness", "a second refusal", |row| {
            row["tries"].as_u64().is_some_and(|t| t >= 2) && !row["last_error"].is_null()
        });
        assert_eq!(still["cursor"], 0, "{still}");
        assert_eq!(
            s.witnessed(),
            vec![(ORIGIN.to_string(), 5), (ORIGIN_B.to_string(), 2)]
        );
        assert_eq!(fork.verify().status.code(), Some(1));
        ok(a.verify());
        ok(b.verify());
        let table = text(&ok(run(s.dir.path(), &["--db", &pg.url, "sink", "status"])));
        assert!(
            table
                .lines()
                .any(|l| l.contains("log-fork") && l.contains("refused")),
            "{table}"
        );
        terminate(follow);
    }

    /// A file target on PostgreSQL must name each log's file: one file of many logs would take
    /// one log's checkpoint of a size for another's.
    #[test]
    fn a_file_target_on_postgres_without_a_file_per_log_is_refused_before_anything_runs() {
        let Some(pg) = support::PgSchema::new("witness_file_pg") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let event = r#"{"kind":"tool_execution","action":"EXECUTE","operation":"pg"}"#;
        ok(run(
            dir.path(),
            &["--db", &pg.url, "--log-id", "log-a", "log", event],
        ));
        std::fs::write(
            dir.path().join("sinks.toml"),
            "[[sink]]\nname = \"copy\"\ntype = \"witness\"\ntarget = \"file\"\npath = \"c.jsonl\"\n",
        )
        .unwrap();
        let out = run(
            dir.path(),
            &["--db", &pg.url, "follow", "--sink", "sinks.toml"],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains("sink `copy`: on PostgreSQL a file target writes one file per log")
                && text(&out).contains("{log}"),
            "{}",
            text(&out)
        );
        assert!(!dir.path().join("c.jsonl").exists());
    }

    /// On PostgreSQL the witness keeps its state with a connection that claims no log: started
    /// again, it adds no log to the database (each start once made a writer of a new log, which an
    /// append would have filled), and it still knows what it co-signed before.
    #[test]
    fn a_witness_started_again_adds_no_log_and_keeps_its_state() {
        let Some(pg) = support::PgSchema::new("witness_again") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        ok(run(
            dir.path(),
            &["keygen", "--name", "log.test", "--out", &path("log.key")],
        ));
        ok(run(
            dir.path(),
            &[
                "witness",
                "keygen",
                "--name",
                "witness.test/w1",
                "--out",
                &path("w.key"),
            ],
        ));
        let in_log = |args: &[&str]| -> Output {
            let mut all = vec!["--db", pg.url.as_str(), "--log-id", "log-a"];
            all.extend_from_slice(args);
            run(dir.path(), &all)
        };
        let grow = |from: usize, n: usize| {
            for i in from..from + n {
                let event = format!(
                    r#"{{"kind":"tool_execution","action":"EXECUTE","operation":"pg{i}"}}"#
                );
                ok(in_log(&["log", &event]));
            }
            ok(in_log(&[
                "checkpoint",
                "--key",
                &path("log.key"),
                "--origin",
                ORIGIN,
            ]));
        };
        let start = || {
            let mut serve = Command::new(BIN);
            serve.args(["--db", &pg.url]);
            spawn_serve(
                serve,
                &[
                    "--witness-key",
                    &path("w.key"),
                    "--witness-trust",
                    &format!("{ORIGIN}={}", path("log.key.pub")),
                ],
            )
        };
        let stop = |mut child: Child| {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        };
        let push = |base: &str| {
            in_log(&[
                "witness",
                "push",
                "--url",
                base,
                "--key",
                &path("w.key.pub"),
            ])
        };
        let logs = || -> Vec<String> {
            let mut client = ::postgres::Client::connect(&pg.url, ::postgres::NoTls).unwrap();
            client
                .query("SELECT log_id FROM logs ORDER BY log_id", &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
        };
        grow(0, 3);
        let (first, base) = start();
        assert!(text(&ok(push(&base))).contains("co-signed checkpoint 3"));
        stop(first);
        grow(3, 2);
        let (again, base) = start();
        // It extends what the first run co-signed: the state is the same one.
        assert!(text(&ok(push(&base))).contains("co-signed checkpoint 5"));
        stop(again);
        assert_eq!(logs(), vec!["log-a".to_string()]);
    }
}
