//! TIC sources run by a node's runner over a real store: a capture
//! replayed once, and a port that is not there.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use connectors::ConnectorSettings;
use tic::Mode;

fn place(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("fedwatt-connectors-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn entries(toml_text: &str) -> Vec<ConnectorSettings> {
    #[derive(serde::Deserialize)]
    struct File {
        connector: Vec<ConnectorSettings>,
    }
    toml::from_str::<File>(toml_text).unwrap().connector
}

/// A historic frame: its address, a base index, a power.
fn historic(base: u64, papp: u64) -> Vec<u8> {
    let mut bytes = vec![tic::STX];
    tic::write_group(&mut bytes, Mode::Historic, b"ADCO", None, b"031762120162");
    tic::write_group(
        &mut bytes,
        Mode::Historic,
        b"BASE",
        None,
        format!("{base:09}").as_bytes(),
    );
    tic::write_group(
        &mut bytes,
        Mode::Historic,
        b"PAPP",
        None,
        format!("{papp:05}").as_bytes(),
    );
    bytes.push(tic::ETX);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_is_replayed_once_at_its_interval_and_the_component_ends() {
    let dir = place("replay");
    let capture = dir.join("capture.tic");
    let mut bytes = b"noise before the first frame".to_vec();
    for i in 0..3 {
        bytes.extend_from_slice(&historic(1_000 + i, 400 + i));
    }
    std::fs::write(&capture, &bytes).unwrap();
    let store = store::Store::open(None, &dir, "UTC").unwrap();
    let mut node = node::Node::new(store.clone());
    connectors::add_to(
        &mut node,
        &entries(&format!(
            "[[connector]]\nid = \"replay\"\nkind = \"tic\"\nfile = {:?}\ninterval = 0.2\nowner = \"alice\"\nprm = \"30001610071843\"\n",
            capture.display().to_string()
        )),
    )
    .unwrap();
    let board = node.status();
    let started = Instant::now();
    // The replay ends by itself; the node then has nothing left to run.
    node.run(std::future::pending()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "paced by the interval"
    );
    let index = store
        .stream("urn:dev:prm:30001610071843_consumption/energy/active/index")
        .unwrap()
        .unwrap();
    assert_eq!((index.count, index.unit.as_deref()), (3, Some("Wh")));
    assert_eq!(index.owner.as_deref(), Some("alice"));
    let power = store
        .stream("urn:dev:prm:30001610071843_consumption/power/apparent/raw")
        .unwrap()
        .unwrap();
    assert_eq!((power.count, power.unit.as_deref()), (3, Some("VA")));
    let health = board.health(&store).unwrap()["connectors"]["replay"].clone();
    assert_eq!(health["state"], "replayed", "{health}");
    assert_eq!(health["frames"], 3, "{health}");
    assert_eq!(health["records"], 6, "{health}");
    assert_eq!(health["mode"], "historic", "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_is_not_there_is_retried_and_shown_in_health_without_stopping_the_node() {
    let dir = place("missing");
    let store = store::Store::open(None, &dir, "UTC").unwrap();
    let mut node = node::Node::new(store.clone());
    connectors::add_to(
        &mut node,
        &entries("[[connector]]\nid = \"gone\"\nkind = \"tic\"\nport = \"/dev/no-such-tty\"\n"),
    )
    .unwrap();
    let board = node.status();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(node.run(async move {
        let _ = stopped.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(10);
    let health = loop {
        // The board has the connectors once the component runs.
        let board = board.health(&store).unwrap();
        let health = board
            .get("connectors")
            .map_or(serde_json::Value::Null, |c| c["gone"].clone());
        if health["state"] == "retrying" {
            break health;
        }
        assert!(Instant::now() < deadline, "never retrying: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = health["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("cannot open /dev/no-such-tty: ") && error.contains("trying again"),
        "{error}"
    );
    assert_eq!(health["errors"], 1, "{health}");
    assert!(!running.is_finished(), "a missing port stopped the node");
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

#[test]
fn two_connectors_with_one_id_are_refused() {
    let dir = place("twice");
    let store = store::Store::open(None, &dir, "UTC").unwrap();
    let mut node = node::Node::new(store);
    let e = connectors::add_to(
        &mut node,
        &entries(
            "[[connector]]\nid = \"a\"\nkind = \"tic\"\nport = \"/dev/x\"\n[[connector]]\nid = \"a\"\nkind = \"tic\"\nport = \"/dev/y\"\n",
        ),
    )
    .unwrap_err();
    assert!(
        e.starts_with(r#"[[connector]] id "a": the id is given to two"#),
        "{e}"
    );
    assert!(node.names().is_empty());
}
