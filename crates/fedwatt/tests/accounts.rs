//! Accounts end to end, on both backends: `fedwatt user …` creates them,
//! a real node signs them in (cookie and CSRF header), the roles decide
//! what each sees and writes, and an owner manages the sharing of their
//! own streams.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{Backend, Node, Place, backends};
use serde_json::{Value, json};

fn each_backend(scenario: impl Fn(Backend)) {
    for backend in backends() {
        eprintln!("--- {backend:?}");
        scenario(backend);
    }
}

/// An answer with its headers.
struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    fn detail(&self) -> String {
        self.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A signed-in browser: its cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

/// Sends a request with these headers (and a JSON body if any).
fn call(
    node: &Node,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", node.base));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = match body {
        Some(body) => agent.run(
            request
                .header("Content-Type", "application/json")
                .body(body.as_bytes().to_vec())
                .unwrap(),
        ),
        None => agent.run(request.body(()).unwrap()),
    };
    let mut response = response.unwrap();
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.body_mut().read_to_vec().unwrap(),
    }
}

fn sign_in(node: &Node, account: &str, password: &str) -> Reply {
    let body = json!({"account": account, "password": password}).to_string();
    call(node, "POST", "/api/v1/session", &[], Some(&body))
}

fn signed_in(node: &Node, account: &str, password: &str) -> Browser {
    let reply = sign_in(node, account, password);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let cookie = reply.header("set-cookie");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    Browser {
        cookie,
        csrf: reply.json()["csrf"].as_str().unwrap().to_owned(),
    }
}

impl Browser {
    fn get(&self, node: &Node, path: &str) -> Reply {
        call(node, "GET", path, &[("Cookie", &self.cookie)], None)
    }

    /// A call that changes something, with the CSRF header.
    fn send(&self, node: &Node, method: &str, path: &str, body: Option<&str>) -> Reply {
        call(
            node,
            method,
            path,
            &[("Cookie", &self.cookie), ("X-CSRF-Token", &self.csrf)],
            body,
        )
    }

    fn post_senml(&self, node: &Node, pack: &str, csrf: bool) -> Reply {
        let mut headers = vec![
            ("Cookie", self.cookie.as_str()),
            ("Content-Type", "application/senml+json"),
        ];
        if csrf {
            headers.push(("X-CSRF-Token", &self.csrf));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut request = agent.post(format!("{}/api/v1/data", node.base));
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let mut response = request.send(pack.as_bytes()).unwrap();
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.body_mut().read_to_vec().unwrap(),
        }
    }
}

/// `fedwatt user add NAME …`, the password given on standard input.
fn add_user(place: &Place, name: &str, role: &str, more: &[&str], password: &str) {
    let mut child = place
        .command()
        .args(["user", "add", name, "--role", role, "--display-name"])
        .arg(format!("{name} display"))
        .args(more)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A node with accounts alice (member, owner of `alice:*`), bob
/// (member), olga (operator) and root (admin); a gateway token wrote
/// alice's and bob's meters, a token named alice a stream alice owns by
/// name, and an open weather stream.
fn started(backend: Backend) -> (Place, Node, String) {
    let place = Place::new(backend);
    add_user(
        &place,
        "alice",
        "member",
        &["--stream", "alice:*"],
        "alice password",
    );
    add_user(&place, "bob", "member", &[], "bob password");
    add_user(&place, "olga", "operator", &[], "olga password");
    let file = place.dir().join("root-password");
    std::fs::write(&file, "root password\n").unwrap();
    add_user(
        &place,
        "root",
        "admin",
        &["--password-file", file.to_str().unwrap()],
        "ignored: the file wins",
    );
    let listed = place.run(&["user", "list"]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("alice\tmember\talice display\talice:*\t-"),
        "{listed}"
    );

    let gateway = place.token("gateway", "admin", "*");
    let by_name = place.token("alice", "write", "alice-owned/*");
    let node = place.serve(&[]);
    for (token, pack) in [
        (
            &gateway,
            r#"[{"bn":"alice:","n":"meter","bt":1704067200,"bu":"W","v":500},{"n":"meter","t":60,"v":510}]"#,
        ),
        (
            &gateway,
            r#"[{"n":"bob:meter","t":1704067200,"u":"W","v":900}]"#,
        ),
        (
            &gateway,
            r#"[{"n":"public:weather","t":1704067200,"u":"Cel","v":12}]"#,
        ),
        (
            &by_name,
            r#"[{"n":"alice-owned/boiler","t":1704067200,"u":"W","v":2000}]"#,
        ),
    ] {
        let posted = node.post_json(token, pack);
        assert_eq!(posted.status, 200, "{pack}: {}", posted.text());
    }
    let open = node.patch(
        "/api/v1/streams/public:weather",
        Some(&gateway),
        r#"{"open":true,"metadata":{"labels":{"site":"Weather Station"}}}"#,
    );
    assert_eq!(open.status, 200, "{}", open.text());
    (place, node, gateway)
}

fn names(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200);
    reply.json()["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_session_opens_with_the_password_needs_its_csrf_token_and_ends() {
    each_backend(|backend| {
        let (_place, node, _) = started(backend);
        for (account, password) in [("alice", "wrong password"), ("nobody", "alice password")] {
            let refused = sign_in(&node, account, password);
            assert_eq!(
                (refused.status, refused.detail()),
                (401, "wrong account or password".into())
            );
        }
        let reply = sign_in(&node, "alice", "alice password");
        assert_eq!(reply.status, 200);
        let cookie = reply.header("set-cookie");
        assert!(
            cookie.starts_with("fedwatt_session=")
                && cookie.ends_with("; HttpOnly; SameSite=Strict; Path=/; Secure"),
            "{cookie}"
        );
        let body = reply.json();
        assert_eq!(
            (
                &body["account"],
                &body["display_name"],
                &body["role"],
                &body["streams"],
                &body["consumption_stream"]
            ),
            (
                &json!("alice"),
                &json!("alice display"),
                &json!("member"),
                &json!(["alice:*"]),
                &Value::Null
            )
        );
        let browser = signed_in(&node, "alice", "alice password");
        let me = browser.get(&node, "/api/v1/session");
        assert_eq!(
            (me.status, me.json()["csrf"].as_str()),
            (200, Some(browser.csrf.as_str()))
        );

        let reading = r#"[{"n":"alice:meter","t":1704070000,"u":"W","v":520}]"#;
        let forged = browser.post_senml(&node, reading, false);
        assert_eq!(
            (forged.status, forged.detail()),
            (403, "missing or wrong X-CSRF-Token header".into())
        );
        let wrong = Browser {
            cookie: browser.cookie.clone(),
            csrf: "not-it".into(),
        };
        assert_eq!(wrong.post_senml(&node, reading, true).status, 403);
        let accepted = browser.post_senml(&node, reading, true);
        assert_eq!(
            (accepted.status, accepted.json()),
            (200, json!({"accepted": 1}))
        );

        let no_csrf = call(
            &node,
            "DELETE",
            "/api/v1/session",
            &[("Cookie", &browser.cookie)],
            None,
        );
        assert_eq!(no_csrf.status, 403);
        let out = browser.send(&node, "DELETE", "/api/v1/session", None);
        assert_eq!(out.status, 204);
        assert!(
            out.header("set-cookie").contains("Max-Age=0"),
            "{}",
            out.header("set-cookie")
        );
        assert_eq!(browser.get(&node, "/api/v1/session").status, 401);
        assert_eq!(
            browser.get(&node, "/api/v1/streams").status,
            401,
            "an ended session is refused"
        );
    });
}

#[test]
fn failed_sign_ins_are_limited_per_account() {
    let (_place, node, _) = started(Backend::Sqlite);
    for _ in 0..5 {
        assert_eq!(sign_in(&node, "bob", "not bob's password").status, 401);
    }
    let limited = sign_in(&node, "bob", "bob password");
    assert_eq!(limited.status, 429, "even the right password waits");
    let wait: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

#[test]
fn members_read_open_streams_and_their_own_and_write_only_their_own() {
    each_backend(|backend| {
        let (_place, node, _) = started(backend);
        let alice = signed_in(&node, "alice", "alice password");
        assert_eq!(
            names(&alice.get(&node, "/api/v1/streams")),
            ["alice-owned/boiler", "alice:meter", "public:weather"]
        );
        assert_eq!(
            names(&alice.get(&node, "/api/v1/streams?q=STATION")),
            ["public:weather"]
        );
        assert_eq!(
            names(&alice.get(&node, "/api/v1/streams?q=boil")),
            ["alice-owned/boiler"]
        );
        for path in [
            "/api/v1/records?stream=bob:meter",
            "/api/v1/aggregate?stream=bob:meter&from=0&to=1800000000&every=P1D",
            "/api/v1/streams/bob:meter",
        ] {
            assert_eq!(alice.get(&node, path).status, 403, "{path}");
        }
        assert_eq!(
            alice
                .get(&node, "/api/v1/records?stream=alice:meter")
                .status,
            200
        );
        let bobs = alice.post_senml(
            &node,
            r#"[{"n":"bob:meter","t":1704070000,"u":"W","v":1}]"#,
            true,
        );
        assert_eq!(bobs.status, 403, "{}", String::from_utf8_lossy(&bobs.body));
        let owned_by_name = alice.post_senml(
            &node,
            r#"[{"n":"alice-owned/boiler","t":1704070000,"u":"W","v":1}]"#,
            true,
        );
        assert_eq!(owned_by_name.status, 200);
        assert_eq!(alice.get(&node, "/api/v1/accounts").status, 403);
        assert_eq!(
            alice
                .send(
                    &node,
                    "PATCH",
                    "/api/v1/streams/alice:meter",
                    Some(r#"{"open":true}"#)
                )
                .status,
            403
        );

        let olga = signed_in(&node, "olga", "olga password");
        assert_eq!(names(&olga.get(&node, "/api/v1/streams")).len(), 4);
        let manual = olga.post_senml(
            &node,
            r#"[{"n":"bob:meter","t":1704070000,"u":"W","v":2}]"#,
            true,
        );
        assert_eq!(manual.status, 200, "an operator writes readings anywhere");
        assert_eq!(olga.get(&node, "/api/v1/accounts").status, 403);
    });
}

#[test]
fn admins_manage_accounts_and_a_bad_field_is_named_with_nothing_saved() {
    each_backend(|backend| {
        let (_place, node, _) = started(backend);
        let root = signed_in(&node, "root", "root password");
        let good = json!({"account": "carol", "display_name": "Carol", "role": "member",
            "password": "carol password", "streams": ["carol:*"], "consumption_stream": null});
        for (field, value) in [
            ("password", json!("short")),
            ("account", json!("Carol!")),
            ("role", json!("boss")),
            ("streams", json!(["a b"])),
            ("consumption_stream", json!("carol:*")),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            let refused = root.send(&node, "POST", "/api/v1/accounts", Some(&bad.to_string()));
            assert_eq!(
                (refused.status, &refused.json()["field"]),
                (400, &json!(field)),
                "{}",
                refused.detail()
            );
        }
        let listed = root.get(&node, "/api/v1/accounts").json();
        assert_eq!(
            listed.as_array().unwrap().len(),
            4,
            "nothing refused was saved: {listed}"
        );

        let forged = call(
            &node,
            "POST",
            "/api/v1/accounts",
            &[("Cookie", &root.cookie)],
            Some(&good.to_string()),
        );
        assert_eq!(forged.status, 403);
        let created = root.send(&node, "POST", "/api/v1/accounts", Some(&good.to_string()));
        assert_eq!(created.status, 201);
        assert_eq!(created.json()["streams"], json!(["carol:*"]));
        let again = root.send(&node, "POST", "/api/v1/accounts", Some(&good.to_string()));
        assert_eq!(again.status, 409);
        let changed = root.send(
            &node,
            "PATCH",
            "/api/v1/accounts/carol",
            Some(r#"{"display_name":"Carol B.","consumption_stream":"carol:meter"}"#),
        );
        assert_eq!(
            (
                changed.status,
                &changed.json()["display_name"],
                &changed.json()["consumption_stream"]
            ),
            (200, &json!("Carol B."), &json!("carol:meter"))
        );
        let carol = signed_in(&node, "carol", "carol password");
        assert_eq!(
            root.send(&node, "DELETE", "/api/v1/accounts/carol", None)
                .status,
            204
        );
        assert_eq!(
            carol.get(&node, "/api/v1/session").status,
            401,
            "its sessions went with it"
        );
        assert_eq!(
            root.send(&node, "DELETE", "/api/v1/accounts/carol", None)
                .status,
            404
        );
    });
}

#[test]
fn an_owner_sees_and_revokes_grants_on_their_streams_and_exports_their_records() {
    each_backend(|backend| {
        let (_place, node, gateway) = started(backend);
        let mut ids = Vec::new();
        for streams in ["alice:*", "bob:*"] {
            let body = json!({"to": "peer@b.example", "streams": streams, "purpose": "a study"})
                .to_string();
            let grant = node.post(
                "/api/v1/grants",
                Some(&gateway),
                "application/json",
                body.as_bytes(),
            );
            assert_eq!(grant.status, 201, "{}", grant.text());
            ids.push(grant.json()["id"].as_i64().unwrap());
        }
        let alice = signed_in(&node, "alice", "alice password");
        let grants = alice.get(&node, "/api/v1/me/grants").json();
        let grants = grants["grants"].as_array().unwrap();
        assert_eq!(grants.len(), 1, "{grants:?}");
        assert_eq!(
            (&grants[0]["id"], &grants[0]["streams"]),
            (&json!(ids[0]), &json!(["alice:meter"]))
        );

        let bobs = alice.send(&node, "DELETE", &format!("/api/v1/grants/{}", ids[1]), None);
        assert_eq!(bobs.status, 403);
        let revoked = alice.send(&node, "DELETE", &format!("/api/v1/grants/{}", ids[0]), None);
        assert_eq!(
            revoked.status,
            200,
            "{}",
            String::from_utf8_lossy(&revoked.body)
        );
        assert!(revoked.json()["revoked"].is_i64());

        let transfers = alice.get(&node, "/api/v1/me/transfers").json();
        let kinds: Vec<&str> = transfers
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["revoke", "grant"],
            "newest first, bob's grant left out: {transfers}"
        );
        assert_eq!(transfers[0]["stream"], json!("alice:meter"));

        let export = alice.get(&node, "/api/v1/me/export");
        assert_eq!(export.status, 200);
        assert_eq!(export.header("content-type"), "application/senml+json");
        assert!(
            export
                .header("content-disposition")
                .starts_with("attachment; filename=\"fedwatt-alice-"),
            "{}",
            export.header("content-disposition")
        );
        let pack = export.json();
        let mut exported: Vec<&str> = pack
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["n"].as_str().unwrap())
            .collect();
        exported.dedup();
        assert_eq!(exported, ["alice-owned/boiler", "alice:meter"]);
        assert_eq!(pack.as_array().unwrap().len(), 3);

        let olga = signed_in(&node, "olga", "olga password");
        let nothing = olga.get(&node, "/api/v1/me/export");
        assert_eq!(
            (nothing.status, nothing.json()),
            (200, json!([])),
            "olga owns no stream"
        );

        let token_only = node.get("/api/v1/me/grants", Some(&gateway));
        assert_eq!(token_only.status, 403, "a token has no account");
    });
}

#[test]
fn a_password_is_asked_twice_on_a_terminal_without_echo() {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let place = Place::new(Backend::Sqlite);
    add_user(&place, "alice", "member", &[], "alice password");
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&controller).unwrap();
    unlockpt(&controller).unwrap();
    let replica = ptsname(&controller, Vec::new()).unwrap();
    let terminal = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(replica.to_str().unwrap())
            .unwrap()
    };
    let mut child = place
        .command()
        .args(["user", "passwd", "alice"])
        .stdin(terminal())
        .stderr(terminal())
        .spawn()
        .unwrap();

    // What the terminal shows, read as it comes.
    let shown = Arc::new(Mutex::new(Vec::new()));
    let reader = controller.try_clone().unwrap();
    let sink = Arc::clone(&shown);
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = rustix::io::read(&reader, &mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let wait_for = |text: &str| {
        let start = Instant::now();
        while !String::from_utf8_lossy(&shown.lock().unwrap()).contains(text) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no {text:?} on the terminal"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("Password for alice: ");
    rustix::io::write(&controller, b"a new long password\n").unwrap();
    wait_for("The same password again: ");
    rustix::io::write(&controller, b"a new long password\n").unwrap();
    assert!(child.wait().unwrap().success());
    let shown = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    assert!(!shown.contains("a new long password"), "echoed: {shown:?}");

    let node = place.serve(&[]);
    assert_eq!(sign_in(&node, "alice", "alice password").status, 401);
    assert_eq!(sign_in(&node, "alice", "a new long password").status, 200);
}
