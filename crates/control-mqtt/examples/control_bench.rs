//! The control loop with a fleet: run by bench/control.sh.
//!
//! `control_bench node --devices N --broker HOST:PORT` runs the control
//! loop for N water heaters on Tasmota plugs (group `all`), and prints JSON
//! lines on standard output as milestones pass: `ready` (every plug
//! confirmed on), `shed` (every OFF confirmed, with the confirmation times),
//! `monitoring` (power readings taken in).
//!
//! `control_bench fleet --devices N --broker HOST:PORT` plays the N plugs on
//! one MQTT connection, answering as Tasmota does, starts the node (as a
//! process of its own, whose CPU and RSS it reads), runs the measures, and
//! prints the results as one JSON line.
//!
//! `BENCH_DEBUG=1` makes the node print its journal on standard error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use control::driver::DeviceAddress;
use control::equipment::Safety;
use control::machine::Part;
use control::model::{EquipmentKind, Firmware, Mode, Typology};
use control_mqtt::{
    self as runtime, ControlConfig, DeviceConfig, EquipmentConfig, JournalEntry, MqttConfig,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, watch};

const CLIENT_ID: &str = "bench-node";

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn plug(i: usize) -> String {
    format!("bench-plug-{i}")
}

fn quantiles(mut v: Vec<i64>) -> serde_json::Value {
    v.sort_unstable();
    let q = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)] as f64 / 1000.0;
    serde_json::json!({"count": v.len(), "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": q(1.0)})
}

async fn node(devices: usize, host: String, port: u16) {
    let equipments = (0..devices)
        .map(|i| EquipmentConfig {
            name: format!("wh-{i}"),
            kind: EquipmentKind::WaterHeater,
            typology: Typology::Plug,
            mode: Mode::Piloted,
            safety: Safety {
                min_on: 0,
                min_off: 0,
                max_shed: 3_600_000_000,
            },
            cycle: control::equipment::Cycle::default(),
            groups: vec!["all".into()],
            site: None,
            devices: vec![DeviceConfig {
                part: Part::Switch,
                address: DeviceAddress {
                    firmware: Firmware::Tasmota,
                    topic: plug(i),
                    channel: 0,
                },
            }],
        })
        .collect();
    let config = ControlConfig {
        mqtt: MqttConfig {
            host,
            port,
            user: None,
            password: None,
            client_id: CLIENT_ID.into(),
            tls: None,
        },
        equipments,
        displays: Vec::new(),
        sites: Vec::new(),
        timezone: jiff::tz::TimeZone::UTC,
    };
    let (tx, mut rx) = mpsc::channel(65_536);
    let (_stop, stopped) = watch::channel(false);
    // Nothing asks the loop anything here: the handle is dropped.
    let (_, requests) = runtime::handle();
    tokio::spawn(runtime::run(config, tx, requests, stopped));
    let (mut on, mut off, mut power) = (0usize, Vec::new(), 0usize);
    let mut power_first = None;
    let debug = std::env::var("BENCH_DEBUG").is_ok();
    while let Some(runtime::Note { entry, .. }) = rx.recv().await {
        if debug {
            eprintln!("{entry:?}");
        }
        match entry {
            JournalEntry::Confirmed {
                order: control::driver::Order::On,
                ..
            } => {
                on += 1;
                if on == devices {
                    println!("{}", serde_json::json!({"ready": true}));
                }
            }
            JournalEntry::Confirmed {
                at,
                order: control::driver::Order::Off,
                ..
            } => {
                off.push(at);
                if off.len() == devices {
                    println!("{}", serde_json::json!({"shed": off}));
                }
            }
            JournalEntry::Power { .. } => {
                power += 1;
                let first = *power_first.get_or_insert_with(Instant::now);
                if power % 1000 == 0 {
                    let s = first.elapsed().as_secs_f64();
                    println!("{}", serde_json::json!({"monitoring": power, "seconds": s}));
                }
            }
            _ => {}
        }
    }
}

fn cpu_and_rss(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let tick = 100.0;
    let cpu = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse().ok())
        .unwrap_or(0);
    (cpu / tick, rss)
}

/// Per plug, each order it was sent: when (µs) and what.
type OrdersSeen = HashMap<String, Vec<(i64, String)>>;

type Lines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;

/// The node's next milestone.
async fn next(lines: &mut Lines) -> Option<serde_json::Value> {
    let line = lines.next_line().await.ok().flatten()?;
    serde_json::from_str(&line).ok()
}

async fn fleet(devices: usize, host: String, port: u16, monitoring: usize) {
    let mut options = MqttOptions::new("bench-fleet", &host, port);
    options.set_keep_alive(Duration::from_secs(60));
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(options, 100_000);
    client
        .subscribe("cmnd/+/POWER1", QoS::AtLeastOnce)
        .await
        .unwrap();
    // The plugs listen before the node starts, as devices already there do.
    while !matches!(events.poll().await, Ok(Event::Incoming(Packet::SubAck(_)))) {}
    let orders: Arc<Mutex<OrdersSeen>> = Arc::default();
    let answer = client.clone();
    let seen = orders.clone();
    tokio::spawn(async move {
        let mut state: HashMap<String, bool> = HashMap::new();
        loop {
            let Ok(event) = events.poll().await else {
                // The broker is away: pause rather than spin.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let Event::Incoming(Packet::Publish(p)) = event else {
                continue;
            };
            let at = now_us();
            let device = p.topic.split('/').nth(1).unwrap_or("").to_owned();
            let word = String::from_utf8_lossy(&p.payload).to_string();
            let on = match word.as_str() {
                "ON" => true,
                "OFF" => false,
                _ => *state.get(&device).unwrap_or(&false),
            };
            if !word.is_empty() {
                seen.lock()
                    .unwrap()
                    .entry(device.clone())
                    .or_default()
                    .push((at, word));
            }
            state.insert(device.clone(), on);
            let body = format!(r#"{{"POWER1":"{}"}}"#, if on { "ON" } else { "OFF" });
            let _ = answer
                .publish(
                    format!("stat/{device}/RESULT"),
                    QoS::AtLeastOnce,
                    false,
                    body,
                )
                .await;
        }
    });
    // The node, its milestones on its standard output.
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "node",
            "--devices",
            &devices.to_string(),
            "--broker",
            &format!("{host}:{port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let node_pid = child.id().unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
    loop {
        let Some(v) = next(&mut lines).await else {
            return;
        };
        if v.get("ready").is_some() {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cpu0, _) = cpu_and_rss(node_pid);
    let t0 = now_us();
    let shed = format!(
        r#"{{"kind":"shed","group":"all","until":{}}}"#,
        t0 / 1_000_000 + 600
    );
    client
        .publish(
            runtime::stimulation_topic(CLIENT_ID),
            QoS::AtLeastOnce,
            false,
            shed,
        )
        .await
        .unwrap();
    let confirmed: Vec<i64> = loop {
        let Some(v) = next(&mut lines).await else {
            return;
        };
        if let Some(times) = v.get("shed") {
            break times
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_i64().unwrap() - t0)
                .collect();
        }
    };
    let (cpu1, rss_shed) = cpu_and_rss(node_pid);
    let out: Vec<i64> = orders
        .lock()
        .unwrap()
        .values()
        .filter_map(|v| v.iter().find(|(_, w)| w == "OFF").map(|(at, _)| at - t0))
        .collect();
    // Monitoring: power readings from every plug, as fast as one client
    // sends them.
    let started = Instant::now();
    for k in 0..monitoring {
        let device = plug(k % devices);
        let body = format!(r#"{{"ENERGY":{{"Power":{}}}}}"#, k % 3000);
        client
            .publish(
                format!("tele/{device}/SENSOR"),
                QoS::AtMostOnce,
                false,
                body,
            )
            .await
            .unwrap();
    }
    let sent_in = started.elapsed().as_secs_f64();
    let mut taken = (0, 0.0);
    while taken.0 < monitoring {
        let Some(v) = next(&mut lines).await else {
            break;
        };
        if let Some(n) = v.get("monitoring").and_then(|n| n.as_u64()) {
            taken = (n as usize, v["seconds"].as_f64().unwrap());
        }
    }
    let (cpu2, rss_end) = cpu_and_rss(node_pid);
    println!(
        "{}",
        serde_json::json!({
            "devices": devices,
            "orders_out": quantiles(out),
            "confirmations_recorded": quantiles(confirmed),
            "shed_cpu_seconds": ((cpu1 - cpu0) * 100.0).round() / 100.0,
            "monitoring": {"messages": monitoring, "sent_in_s": (sent_in * 100.0).round() / 100.0,
                "taken_in_s": (taken.1 * 100.0).round() / 100.0,
                "per_s": (taken.0 as f64 / taken.1).round(),
                "cpu_seconds": ((cpu2 - cpu1) * 100.0).round() / 100.0},
            "rss_mib": {"after_shed": rss_shed / 1024, "end": rss_end / 1024},
        })
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let devices: usize = arg("--devices").map_or(10_000, |d| d.parse().unwrap());
    let broker = arg("--broker").unwrap_or_else(|| "127.0.0.1:21883".into());
    let (host, port) = broker.rsplit_once(':').unwrap();
    let (host, port) = (host.to_owned(), port.parse().unwrap());
    match args.get(1).map(String::as_str) {
        Some("node") => node(devices, host, port).await,
        Some("fleet") => {
            let monitoring = arg("--monitoring").map_or(200_000, |m| m.parse().unwrap());
            fleet(devices, host, port, monitoring).await
        }
        _ => eprintln!(
            "usage: control_bench fleet|node --devices N --broker HOST:PORT [--monitoring M]"
        ),
    }
}
