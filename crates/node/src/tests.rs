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
    says_ready: bool,
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
            if !self.says_ready {
                cx.shutdown.requested().await;
                self.log
                    .lock()
                    .unwrap()
                    .push(format!("{} stopped", self.name));
                return Ok(());
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
        says_ready: true,
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
    // The reverse of the starting order, each once the one after it is
    // done: the API drains first, the broker goes last.
    assert_eq!(
        log[6..],
        ["http stopped", "control stopped", "broker stopped"]
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_start_up_stops_what_started_and_starts_nothing_more() {
    let (store, _dir) = store();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut node = Node::new(store);
    node.add(probe("broker", &log));
    // Never says it is ready: the runner waits for it when the stop comes.
    node.add(Probe {
        says_ready: false,
        ..probe("control", &log)
    });
    node.add(probe("http", &log));
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(node.run(async {
        let _ = stopped.await;
    }));
    while !log.lock().unwrap().contains(&"control started".to_owned()) {
        tokio::task::yield_now().await;
    }
    stop.send(()).unwrap();
    assert_eq!(running.await.unwrap(), Ok(()));
    let log = log.lock().unwrap();
    assert!(!log.iter().any(|l| l.starts_with("http")), "{log:?}");
    assert_eq!(
        log[log.len() - 2..],
        ["control stopped", "broker stopped"],
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_many_threads_a_component_failing_at_start_still_starts_nothing_after_it() {
    for _ in 0..20 {
        let (store, _dir) = store();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut node = Node::new(store);
        node.add(Probe {
            fail: Some("bad settings"),
            ..probe("federation", &log)
        });
        node.add(probe("http", &log));
        let outcome = node.run(std::future::pending()).await;
        assert_eq!(outcome, Err("federation: bad settings".to_owned()));
        assert_eq!(*log.lock().unwrap(), ["federation started"]);
    }
}
