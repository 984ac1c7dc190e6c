use std::sync::{Arc, Mutex};

use super::*;

fn store() -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "fedwatt-node-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    (Store::open(None, &dir, "UTC").unwrap(), dir)
}

/// Writes "NAME started", says it is ready after `ready_after` yields, then
/// waits for shutdown (or fails at once with `fail`).
struct Probe {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    fail: Option<&'static str>,
    ready_after: usize,
}

impl Component for Probe {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(self: Box<Self>, mut cx: Context) -> BoxFuture<Result<(), Failure>> {
        Box::pin(async move {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} started", self.name));
            if let Some(why) = self.fail {
                return Err(why.into());
            }
            for _ in 0..self.ready_after {
                tokio::task::yield_now().await;
            }
            self.log
                .lock()
                .unwrap()
                .push(format!("{} ready", self.name));
            cx.ready();
            cx.shutdown.requested().await;
            self.log
                .lock()
                .unwrap()
                .push(format!("{} stopped", self.name));
            Ok(())
        })
    }
}

fn probe(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Probe {
    Probe {
        name,
        log: log.clone(),
        fail: None,
        ready_after: 20,
    }
}

#[tokio::test]
async fn components_start_in_order_each_once_the_previous_is_ready_and_all_stop() {
    let (store, _dir) = store();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut node = Node::new(store);
    node.add(probe("broker", &log));
    node.add(probe("control", &log));
    node.add(probe("http", &log));
    assert_eq!(node.names(), ["broker", "control", "http"]);
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(node.run(async {
        let _ = stopped.await;
    }));
    while log.lock().unwrap().len() < 6 {
        tokio::task::yield_now().await;
    }
    stop.send(()).unwrap();
    assert_eq!(running.await.unwrap(), Ok(()));
    let log = log.lock().unwrap();
    assert_eq!(
        log[..6],
        [
            "broker started",
            "broker ready",
            "control started",
            "control ready",
            "http started",
            "http ready"
        ]
    );
    let mut stops: Vec<_> = log[6..].to_vec();
    stops.sort();
    assert_eq!(stops, ["broker stopped", "control stopped", "http stopped"]);
}

#[tokio::test]
async fn a_failing_component_stops_the_node_with_its_name_in_the_error() {
    let (store, _dir) = store();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut node = Node::new(store);
    node.add(probe("broker", &log));
    node.add(Probe {
        fail: Some("cannot reach the server"),
        ..probe("federation", &log)
    });
    node.add(probe("http", &log));
    let outcome = node.run(std::future::pending()).await;
    assert_eq!(
        outcome,
        Err("federation: cannot reach the server".to_owned())
    );
    let log = log.lock().unwrap();
    assert!(log.contains(&"broker stopped".to_owned()), "{log:?}");
    assert!(
        !log.iter().any(|l| l.starts_with("http")),
        "a component after the failed one was started: {log:?}"
    );
}

#[tokio::test]
async fn the_status_board_reports_each_registered_component() {
    struct Counter;
    impl Status for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }
        fn health(&self, store: &Store) -> Result<serde_json::Value, store::Error> {
            Ok(serde_json::json!({ "streams": store.streams(None)?.len() }))
        }
        fn metrics(&self, out: &mut String) {
            out.push_str("fedwatt_counter 1\n");
        }
    }
    let (store, _dir) = store();
    let board = StatusBoard::default();
    assert!(board.health(&store).unwrap().is_empty());
    board.register(Arc::new(Counter));
    board.register(Arc::new(Counter));
    assert_eq!(
        serde_json::Value::Object(board.health(&store).unwrap()),
        serde_json::json!({ "counter": { "streams": 0 } })
    );
    assert_eq!(board.metrics(), "fedwatt_counter 1\n");
}
