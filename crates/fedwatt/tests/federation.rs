//! Two organisations' nodes exchanging data over two real Prosody servers
//! federating by s2s (deploy/dev/xmpp, started by scripts/test):
//! a.fedwatt.test on 127.0.0.2 and b.fedwatt.test on 127.0.0.3.
//!
//! Every test takes fresh accounts, and the tests run one at a time (a
//! file lock), since one of them stops domain b's server.

mod common;

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Backend, Node, Place, enc};
use serde_json::Value;

const METER: &str = "urn:dev:prm:30001610071843_consumption/power/active/raw";
const PRODUCTION: &str = "urn:dev:prm:30001610071843_production/power/active/raw";
/// 2023-11-13T00:00:00Z, a Monday.
const MONDAY: i64 = 1_699_833_600;
const DAY: i64 = 86_400;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The two XMPP servers, held for one test at a time.
struct Xmpp {
    dir: PathBuf,
    _turn: File,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The servers, or `None` (a skip) outside scripts/test; in CI, a failure.
fn xmpp() -> Option<Xmpp> {
    let Ok(dir) = std::env::var("FEDWATT_XMPP_DIR") else {
        assert!(
            std::env::var("CI").is_err(),
            "FEDWATT_XMPP_DIR is not set: run the tests with scripts/test, which starts Prosody"
        );
        eprintln!(
            "!!! federation tests SKIPPED: FEDWATT_XMPP_DIR is not set (scripts/test sets it)"
        );
        return None;
    };
    let dir = PathBuf::from(dir);
    let turn = File::create(dir.join("tests.lock")).unwrap();
    turn.lock().unwrap();
    // A previous test may have left b stopped.
    let out = script(&["start"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(Xmpp { dir, _turn: turn })
}

fn script(args: &[&str]) -> std::process::Output {
    Command::new(repo().join("deploy/dev/xmpp"))
        .args(args)
        .output()
        .unwrap()
}

/// An account on one of the two servers.
#[derive(Clone)]
struct Account {
    domain: &'static str,
    user: String,
}

impl Account {
    fn bare(&self) -> String {
        format!("{}@{}.fedwatt.test", self.user, self.domain)
    }

    /// The node's full JID.
    fn node(&self) -> String {
        format!("{}/node", self.bare())
    }

    fn password(&self) -> String {
        format!("{}-pw", self.user)
    }

    fn address(&self) -> &'static str {
        if self.domain == "a" {
            "127.0.0.2:5222"
        } else {
            "127.0.0.3:5222"
        }
    }
}

impl Xmpp {
    /// A fresh account on domain `a` or `b`.
    fn account(&self, domain: &'static str, role: &str) -> Account {
        let user = format!(
            "{role}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let account = Account { domain, user };
        let out = script(&["adduser", domain, &account.user, &account.password()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        account
    }

    fn env(&self, account: &Account) -> Vec<(String, String)> {
        vec![
            ("FEDWATT_XMPP_JID".into(), account.node()),
            ("FEDWATT_XMPP_PASSWORD".into(), account.password()),
            ("FEDWATT_XMPP_ADDRESS".into(), account.address().into()),
            (
                "FEDWATT_XMPP_CA_FILE".into(),
                self.dir.join("ca.pem").display().to_string(),
            ),
            ("FEDWATT_AUDIT_CHECKPOINT_INTERVAL".into(), "1".into()),
        ]
    }

    /// The independent Quoalise client, connected as `account`, with `args`.
    fn quoalise_command(&self, account: &Account, args: &[&str]) -> Command {
        let mut command = Command::new("/usr/bin/python3");
        command
            .arg(repo().join("crates/fedwatt/tests/quoalise_client.py"))
            .args([
                "--jid",
                &format!("{}/py", account.bare()),
                "--password",
                &account.password(),
            ])
            .args(["--address", account.address()])
            .args(["--ca", &self.dir.join("ca.pem").display().to_string()])
            .args(args);
        command
    }

    /// Runs the independent Quoalise client as `account`; its JSON answer.
    fn quoalise(&self, account: &Account, args: &[&str]) -> Value {
        let out = self.quoalise_command(account, args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_else(|| {
            panic!(
                "the Quoalise client printed nothing: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        serde_json::from_str(last).unwrap()
    }
}

/// A node of one organisation: its place, its account, its running process.
struct Org<'x> {
    xmpp: &'x Xmpp,
    place: Place,
    account: Account,
    node: Option<Node>,
    token: String,
}

impl<'x> Org<'x> {
    fn new(xmpp: &'x Xmpp, domain: &'static str) -> Org<'x> {
        let place = Place::new(Backend::Sqlite);
        let account = xmpp.account(domain, "node");
        let token = place.token("admin", "admin", "*");
        let mut org = Org {
            xmpp,
            place,
            account,
            node: None,
            token,
        };
        org.start();
        org
    }

    fn start(&mut self) {
        let env = self.xmpp.env(&self.account);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let node = self.place.serve(&env);
        self.node = Some(node);
        // Wait for the XMPP session.
        wait_for("the node to be online", Duration::from_secs(30), || {
            self.health()["federation"]["online"] == true
        });
    }

    fn node(&self) -> &Node {
        self.node.as_ref().unwrap()
    }

    fn health(&self) -> Value {
        self.node().get("/healthz", None).json()
    }

    fn kill(&mut self) {
        if let Some(mut node) = self.node.take() {
            node.kill();
        }
    }

    /// Runs a `fedwatt` command with this node's settings.
    fn run(&self, args: &[&str]) -> std::process::Output {
        let env = self.xmpp.env(&self.account);
        self.place.command().args(args).envs(env).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "fedwatt {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn ingest(&self, records: &[(i64, f64)], name: &str) {
        let pack: Vec<String> = records
            .iter()
            .map(|(t, v)| format!(r#"{{"n":"{name}","u":"W","t":{t},"v":{v}}}"#))
            .collect();
        let a = self
            .node()
            .post_json(&self.token, &format!("[{}]", pack.join(",")));
        assert_eq!(a.status, 200, "{}", a.text());
    }

    /// The records of a stream in `[from, to)`, as (seconds, value).
    fn records(&self, name: &str, from: i64, to: i64) -> Vec<(i64, f64)> {
        let a = self.node().get(
            &format!("/api/v1/records?stream={}&from={from}&to={to}", enc(name)),
            Some(&self.token),
        );
        if a.status == 404 {
            return Vec::new();
        }
        assert_eq!(a.status, 200, "{}", a.text());
        records_of(&a.json())
    }

    fn count(&self, name: &str) -> u64 {
        let a = self
            .node()
            .get(&format!("/api/v1/streams/{}", enc(name)), Some(&self.token));
        if a.status == 404 {
            return 0;
        }
        a.json()["count"].as_u64().unwrap()
    }
}

/// (t, v) of a SenML JSON answer, resolving bt.
fn records_of(json: &Value) -> Vec<(i64, f64)> {
    let mut bt = 0.0;
    let mut out = Vec::new();
    for r in json.as_array().unwrap() {
        if let Some(b) = r["bt"].as_f64() {
            bt = b;
        }
        if let Some(v) = r["v"].as_f64() {
            out.push(((bt + r["t"].as_f64().unwrap_or(0.0)) as i64, v));
        }
    }
    out
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two weeks of 30-minute points from MONDAY.
fn load_curve() -> Vec<(i64, f64)> {
    (0..14 * 48)
        .map(|i| (MONDAY + 1800 * i, 200.0 + (i % 48) as f64 * 10.0))
        .collect()
}

fn iso(t: i64) -> String {
    let date = jiff::Timestamp::from_second(t).unwrap();
    date.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

#[test]
fn history_is_served_only_under_a_grant_with_precise_refusals() {
    let Some(xmpp) = xmpp() else { return };
    let a = Org::new(&xmpp, "a");
    let b = Org::new(&xmpp, "b");
    a.ingest(&load_curve(), METER);
    let (week_from, week_to) = (iso(MONDAY + 7 * DAY), iso(MONDAY + 14 * DAY));
    let ask = |name: &str| {
        b.run(&[
            "peer",
            "history",
            &a.account.node(),
            name,
            "--from",
            &week_from,
            "--to",
            &week_to,
        ])
    };

    // No grant: not-authorized, and B stores nothing.
    let out = ask(METER);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not-authorized"), "{err}");
    assert_eq!(b.count(METER), 0);

    a.ok(&[
        "grant",
        "add",
        "--to",
        &b.account.bare(),
        "--streams",
        "urn:dev:prm:30001610071843*",
        "--purpose",
        "load study",
        "--retention",
        "P1Y",
    ]);
    let out = ask(METER);
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(
        said.starts_with("336 records of"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Exactly the week asked, values included.
    let expected: Vec<(i64, f64)> = load_curve()
        .into_iter()
        .filter(|(t, _)| (MONDAY + 7 * DAY..MONDAY + 14 * DAY).contains(t))
        .collect();
    assert_eq!(b.records(METER, 0, i64::MAX / 2_000_000), expected);
    let stream = b
        .node()
        .get(&format!("/api/v1/streams/{}", enc(METER)), Some(&b.token))
        .json();
    assert_eq!(stream["origin"], a.account.bare());
    assert_eq!(stream["metadata"]["retention"], "P1Y");

    // A stream the grant covers but that does not exist: item-not-found.
    let out = ask(PRODUCTION);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("item-not-found"), "{err}");
    // A stream outside the grant, existing or not: not-authorized.
    let out = ask("urn:dev:prm:99999999999999_consumption/power/active/raw");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not-authorized"), "{err}");

    // Malformed requests, from an independent client: bad-request.
    let client = xmpp.account("b", "client");
    a.ok(&[
        "grant",
        "add",
        "--to",
        &client.bare(),
        "--streams",
        METER,
        "--min-aggregation",
        "PT1H",
    ]);
    let raw = |xml: &str| xmpp.quoalise(&client, &["raw", &a.account.node(), xml]);
    let no_identifier = r#"<command xmlns="http://jabber.org/protocol/commands" node="get_history" action="execute"/>"#;
    assert_eq!(raw(no_identifier)["error"], "bad-request");
    let bad_time = format!(
        r#"<command xmlns="http://jabber.org/protocol/commands" node="get_history" action="execute"><x xmlns="jabber:x:data" type="submit"><field var="identifier"><value>{METER}</value></field><field var="start_time"><value>last tuesday</value></field></x></command>"#
    );
    let e = raw(&bad_time);
    assert_eq!(e["error"], "bad-request");
    assert!(e["text"].as_str().unwrap().contains("start_time"), "{e}");
    assert_eq!(
        raw(r#"<command xmlns="http://jabber.org/protocol/commands" node="drop_everything"/>"#)["error"],
        "bad-request"
    );
    assert_eq!(
        raw(r#"<query xmlns="jabber:iq:version"/>"#)["error"],
        "service-unavailable"
    );

    // A grant with a minimum aggregation answers hourly means.
    let means = xmpp.quoalise(
        &client,
        &[
            "history",
            &a.account.node(),
            METER,
            &week_from,
            &iso(MONDAY + 8 * DAY),
        ],
    );
    let means = means["records"].as_array().unwrap();
    assert_eq!(means.len(), 24);
    assert_eq!(
        means[1],
        serde_json::json!([(MONDAY + 7 * DAY + 3600) as f64, 225.0])
    );

    // A is still up and online.
    assert_eq!(a.health()["federation"]["online"], true);

    // The audit trail holds, then shows the entry altered behind its back.
    let mut a = a;
    a.kill();
    let verified = a.ok(&["audit", "verify"]);
    assert!(verified.starts_with("audit trail intact"), "{verified}");
    assert!(!verified.contains(" 0 signed checkpoints"), "{verified}");
    let db = rusqlite::Connection::open(a.place.dir().join("fedwatt.sqlite")).unwrap();
    let seq: i64 = db
        .query_row(
            "SELECT seq FROM audit WHERE kind = 'command' ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    db.execute(
        "UPDATE audit SET detail = replace(detail, '336', '335') WHERE seq = ?1",
        [seq],
    )
    .unwrap();
    let out = a.run(&["audit", "verify"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("BROKEN at entry {seq}")), "{said}");
    let b_verified = b.ok(&["audit", "verify"]);
    assert!(b_verified.starts_with("audit trail intact"), "{b_verified}");
}

#[test]
fn pushes_reach_the_subscriber_and_stop_when_the_owner_revokes() {
    let Some(xmpp) = xmpp() else { return };
    let a = Org::new(&xmpp, "a");
    let b = Org::new(&xmpp, "b");
    a.ingest(&load_curve()[..48], METER);
    let granted = a.ok(&[
        "grant",
        "add",
        "--to",
        &b.account.bare(),
        "--streams",
        METER,
    ]);
    let id = granted.split_whitespace().nth(1).unwrap().to_owned();
    let said = b.ok(&["peer", "subscribe", &a.account.node(), METER]);
    assert!(said.starts_with("subscribed"), "{said}");

    // One record at a time: each reaches B's store.
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let t = MONDAY + 30 * DAY + 60 * i;
        let sent = Instant::now();
        a.ingest(&[(t, i as f64)], METER);
        wait_for("a push", Duration::from_secs(10), || {
            b.count(METER) == i as u64 + 1
        });
        slowest = slowest.max(sent.elapsed());
    }
    eprintln!("slowest push, ingest at A to stored at B: {slowest:?}");
    assert_eq!(
        b.records(METER, MONDAY + 30 * DAY, MONDAY + 31 * DAY).len(),
        20
    );

    a.ok(&["grant", "revoke", &id]);
    wait_for(
        "B to erase what it received",
        Duration::from_secs(15),
        || b.count(METER) == 0,
    );
    a.ingest(&[(MONDAY + 40 * DAY, 1.0)], METER);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(b.count(METER), 0, "nothing is pushed after the revocation");
    wait_for("A's outbox to empty", Duration::from_secs(10), || {
        a.health()["federation"]["outbox"] == 0
    });
}

#[test]
fn every_record_arrives_exactly_once_through_crashes_and_a_server_outage() {
    let Some(xmpp) = xmpp() else { return };
    let mut a = Org::new(&xmpp, "a");
    let mut b = Org::new(&xmpp, "b");
    a.ingest(&[(MONDAY, 0.0)], METER);
    a.ok(&[
        "grant",
        "add",
        "--to",
        &b.account.bare(),
        "--streams",
        METER,
    ]);
    b.ok(&["peer", "subscribe", &a.account.node(), METER]);
    // What came before the subscription, B asks for.
    let said = b.ok(&["peer", "history", &a.account.node(), METER]);
    assert!(said.starts_with("1 records"), "{said}");
    let mut sent = vec![(MONDAY, 0.0)];
    let mut next = 1;
    let mut burst = |a: &Org, packs: usize| {
        for _ in 0..packs {
            let pack: Vec<(i64, f64)> = (0..10)
                .map(|k| (MONDAY + 60 * (next + k), (next + k) as f64))
                .collect();
            next += 10;
            a.ingest(&pack, METER);
            sent.extend(pack);
            std::thread::sleep(Duration::from_millis(5));
        }
    };

    // 1. B's node is killed during a stream of pushes, then restarted.
    burst(&a, 20);
    b.kill();
    burst(&a, 30);
    b.start();
    burst(&a, 10);

    // 2. B's XMPP server stops for 20 s.
    let out = script(&["stop", "b"]);
    assert!(out.status.success());
    burst(&a, 20);
    std::thread::sleep(Duration::from_secs(20));
    let out = script(&["start-one", "b"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    burst(&a, 10);

    // 3. A's node is killed with pushes queued, then restarted.
    burst(&a, 20);
    a.kill();
    a.start();
    burst(&a, 5);

    let total = sent.len() as u64;
    wait_for("B to hold every record", Duration::from_secs(120), || {
        b.count(METER) == total
    });
    assert_eq!(
        b.records(METER, 0, i64::MAX / 2_000_000),
        sent,
        "every record once, each as sent"
    );
    wait_for("A's outbox to empty", Duration::from_secs(60), || {
        a.health()["federation"]["outbox"] == 0
    });
    assert_eq!(b.count(METER), total);
}

#[test]
fn a_user_without_a_grant_obtains_nothing_by_any_command_nor_by_forging() {
    let Some(xmpp) = xmpp() else { return };
    let a = Org::new(&xmpp, "a");
    let b = Org::new(&xmpp, "b");
    a.ingest(&load_curve()[..96], METER);
    a.ok(&["grant", "add", "--to", &b.account.bare(), "--streams", "*"]);
    let intruder = xmpp.account("b", "intruder");
    let to = a.account.node();
    let command = |node: &str, extra: &str| {
        format!(
            r#"<command xmlns="http://jabber.org/protocol/commands" node="{node}" action="execute"><x xmlns="jabber:x:data" type="submit"><field var="identifier"><value>{METER}</value></field>{extra}</x></command>"#
        )
    };
    for node in ["get_history", "subscribe", "urn:fedwatt:0#catalogue"] {
        let e = xmpp.quoalise(&intruder, &["raw", &to, &command(node, "")]);
        assert_eq!(e["error"], "not-authorized", "{node}: {e}");
    }
    // Claiming to be B's node inside the payload changes nothing: the
    // requester is who the servers authenticated.
    let forged = command(
        "get_history",
        &format!(
            r#"<field var="from"><value>{}</value></field><field var="requester"><value>{}</value></field>"#,
            b.account.node(),
            b.account.bare()
        ),
    );
    let e = xmpp.quoalise(&intruder, &["raw", &to, &forged]);
    assert_eq!(e["error"], "not-authorized", "{e}");
    let e = xmpp.quoalise(&intruder, &["history", &to, METER]);
    assert_eq!(e["error"], "not-authorized", "{e}");

    // A forged push to B's node, claiming A's grant: not taken in.
    let push = format!(
        r#"<quoalise xmlns="urn:quoalise:0"><data><meta/><sensml xmlns="urn:ietf:params:xml:ns:senml"><senml bn="{METER}" bt="{MONDAY}" v="666"/></sensml></data></quoalise>"#
    );
    let sent = xmpp.quoalise(&intruder, &["message", &b.account.node(), &push]);
    assert_eq!(sent["sent"], true);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.count(METER), 0);
    let audit = b.ok(&["audit", "show"]);
    assert!(
        audit.contains("refused") && audit.contains(&intruder.bare()),
        "{audit}"
    );
    // Nothing of the meter left A for the intruder.
    let shown = a.ok(&["audit", "show"]);
    assert!(
        !shown
            .lines()
            .any(|l| l.contains(&intruder.bare()) && l.contains(" command ")),
        "{shown}"
    );
}

#[test]
fn an_independent_quoalise_client_gets_history_and_pushes() {
    let Some(xmpp) = xmpp() else { return };
    let a = Org::new(&xmpp, "a");
    a.ingest(&load_curve(), METER);
    let client = xmpp.account("b", "client");
    a.ok(&[
        "grant",
        "add",
        "--to",
        &client.bare(),
        "--streams",
        "urn:dev:prm:*",
    ]);
    let to = a.account.node();
    let week = xmpp.quoalise(
        &client,
        &["history", &to, METER, &iso(MONDAY), &iso(MONDAY + 7 * DAY)],
    );
    let got: Vec<(i64, f64)> = week["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_f64().unwrap() as i64, r[1].as_f64().unwrap()))
        .collect();
    assert_eq!(got, load_curve()[..336].to_vec());
    let e = xmpp.quoalise(&client, &["history", &to, "urn:dev:prm:1_nothing"]);
    assert_eq!(e["error"], "item-not-found");

    // Subscribe, in the background, then ingest at A.
    let mut child = xmpp
        .quoalise_command(
            &client,
            &[
                "--records",
                "30",
                "--timeout",
                "20",
                "subscribe",
                &to,
                METER,
            ],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let first = lines.next().unwrap().unwrap();
    assert_eq!(first, r#"{"subscribed": true}"#);
    let fresh: Vec<(i64, f64)> = (0..30)
        .map(|i| (MONDAY + 20 * DAY + 60 * i, i as f64))
        .collect();
    for chunk in fresh.chunks(10) {
        a.ingest(chunk, METER);
    }
    let outcome: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    child.wait().unwrap();
    let pushed: Vec<(i64, f64)> = outcome["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_f64().unwrap() as i64, r[1].as_f64().unwrap()))
        .collect();
    assert_eq!(pushed, fresh);
    // The client acknowledged them (XEP-0184): nothing left to re-send.
    wait_for("A's outbox to empty", Duration::from_secs(10), || {
        a.health()["federation"]["outbox"] == 0
    });
}
