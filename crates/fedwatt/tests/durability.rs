//! Acknowledged means stored: a node killed with SIGKILL while clients post
//! packs keeps every pack it answered 2xx to, and no pack half.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Place, backends};

const PER_STREAM: usize = 25;

/// Pack `k`: 25 points on each of two streams, at times k·1000 + i seconds.
fn pack(k: u64) -> String {
    let mut records = Vec::new();
    for stream in ["dur:a", "dur:b"] {
        for i in 0..PER_STREAM as u64 {
            records.push(format!(
                r#"{{"n":"{stream}","t":{},"v":{i}}}"#,
                1_600_000_000 + k * 1000 + i
            ));
        }
    }
    format!("[{}]", records.join(","))
}

#[test]
fn every_acknowledged_pack_survives_sigkill_and_none_is_half_stored() {
    for backend in backends() {
        let place = Place::new(backend);
        let token = place.token("gateway", "write", "*");
        let mut node = place.serve(&[]);
        let next = Arc::new(AtomicU64::new(0));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..3)
            .map(|_| {
                let (next, acked, stop, token) =
                    (next.clone(), acked.clone(), stop.clone(), token.clone());
                let url = format!("{}/api/v1/data", node.base);
                std::thread::spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(10)))
                        .build()
                        .into();
                    while !stop.load(Ordering::Relaxed) {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let answer = agent
                            .post(&url)
                            .header("Authorization", format!("Bearer {token}"))
                            .header("Content-Type", "application/senml+json")
                            .send(pack(k).as_bytes());
                        match answer {
                            Ok(r) if r.status().is_success() => acked.lock().unwrap().push(k),
                            Ok(r) => panic!("pack {k} refused: {}", r.status()),
                            Err(_) => break, // the node is gone
                        }
                    }
                })
            })
            .collect();
        // Let the clients get going, then kill the node mid-flight.
        while acked.lock().unwrap().len() < 40 {
            std::thread::sleep(Duration::from_millis(20));
        }
        node.kill();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        let sent = next.load(Ordering::Relaxed);

        let node = place.serve(&[]);
        let reader = place.token("auditor", "read", "*");
        let answer = node.get("/api/v1/records?stream=dur:a&stream=dur:b", Some(&reader));
        assert_eq!(answer.status, 200);
        let mut per_pack: BTreeMap<u64, [usize; 2]> = BTreeMap::new();
        for record in answer.json().as_array().unwrap() {
            let k = (record["t"].as_u64().unwrap() - 1_600_000_000) / 1000;
            let side = usize::from(record["n"] == "dur:b");
            per_pack.entry(k).or_default()[side] += 1;
        }
        for (k, counts) in &per_pack {
            assert_eq!(
                *counts, [PER_STREAM; 2],
                "{backend:?}: pack {k} is half stored"
            );
        }
        for k in &acked {
            assert!(
                per_pack.contains_key(k),
                "{backend:?}: pack {k} was acknowledged, then lost"
            );
        }
        eprintln!(
            "{backend:?}: {} packs sent, {} acknowledged, {} stored after SIGKILL",
            sent,
            acked.len(),
            per_pack.len()
        );
    }
}
