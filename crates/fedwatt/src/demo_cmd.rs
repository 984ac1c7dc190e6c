//! `fedwatt demo`: a node with a year of sample data, ready to explore — a
//! town's households, school and town hall, and the cooperative
//! photovoltaic plant on the school's roof with its investors, as 30-minute
//! Linky load curves plus live readings (see `demo_data`) — and a
//! household whose water heater, dishwasher and car it drives (simulated
//! devices on the node's own MQTT broker, see `demo_household`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use store::{Metadata, Scope, Store, StreamPattern};

use crate::node_cmd::{NodeOptions, Serve};

/// `fedwatt demo`.
#[derive(Args)]
pub struct Demo {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Address of the node's own MQTT broker, which the demo household's
    /// devices connect to.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:18830")]
    mqtt_listen: std::net::SocketAddr,
}

use crate::demo_data::{
    DAY, HOUSE, HOUSE_LIVE, LIVE_EVERY, PLANT, PLANT_LIVE, SCHOOL, SITES, STEP, live, live_between,
    sample_year, seed_project,
};

pub fn run(options: &NodeOptions, demo: Demo) -> Result<ExitCode, String> {
    let mut options = options.clone();
    if options.data_dir.is_none() {
        options.data_dir = Some(PathBuf::from("./fedwatt-demo"));
    }
    let config = options.config()?;
    let store = crate::node_cmd::open_store(&config)?;
    let now = store::Time::now().as_micros() / 1_000_000;
    let started = std::time::Instant::now();
    let (records, first, last) = sample_year(now);
    let mut count = records.len();
    store
        .ingest(&records, Some("demo"))
        .map_err(|e| e.to_string())?;
    // The last hour of live readings, so that live charts start full.
    let recent = live_between(now - 3600, now);
    count += recent.len();
    store
        .ingest(&recent, Some("demo"))
        .map_err(|e| e.to_string())?;
    for site in &SITES {
        let name = site.stream;
        let metadata: Metadata = serde_json::from_value(serde_json::json!({
            "device": {"type": "electricity-meter", "identifier_authority": "enedis", "identifier_type": "prm",
                       "identifier_value": name[12..26].to_owned()},
            "measurement": {"physical": "power", "type": "electrical", "unit": "W"},
            "business": {"graph": "load-curve", "direction": site.direction},
            "aggregate": "average",
            "sampling_interval": "PT30M",
            "licence": (name == PLANT).then_some("ODbL-1.0"),
            "labels": {"site": site.label},
        }))
        .map_err(|e| e.to_string())?;
        // The plant's production is published as open data; the rest needs a token.
        store
            .set_stream(name, &metadata, name == PLANT)
            .map_err(|e| e.to_string())?;
    }
    for (name, open, metadata) in [
        (
            HOUSE_LIVE,
            false,
            serde_json::json!({
                "measurement": {"physical": "power", "type": "electrical", "unit": "VA"},
                "business": {"graph": "instant", "direction": "consumption"},
                "sampling_interval": format!("PT{LIVE_EVERY}S"),
                "labels": {"site": "house-a", "source": "tic"},
            }),
        ),
        (
            PLANT_LIVE,
            true,
            serde_json::json!({
                "measurement": {"physical": "power", "type": "electrical", "unit": "W"},
                "business": {"graph": "instant", "direction": "production"},
                "sampling_interval": format!("PT{LIVE_EVERY}S"),
                "licence": "ODbL-1.0",
                "labels": {"site": "pv-plant", "source": "inverter"},
            }),
        ),
    ] {
        let metadata: Metadata = serde_json::from_value(metadata).map_err(|e| e.to_string())?;
        store
            .set_stream(name, &metadata, open)
            .map_err(|e| e.to_string())?;
    }
    let utc = store::TimeZone::UTC;
    let commissioned = store::format_time(first * 1_000_000, &utc)[..10].to_owned();
    seed_project(&store, commissioned)?;
    let accounts = crate::demo_data::seed_accounts(&store)?;
    spawn_live(store.clone());
    let seeded = started.elapsed();
    let reader = fresh_token(&store, "demo-reader", Scope::Read)?;
    let writer = fresh_token(&store, "demo-writer", Scope::Write)?;
    let base = format!("http://{}", demo.listen);
    println!(
        "fedwatt demo: {count} points in {} ({} to {}), written in {:.1} s\n",
        config.data_dir.display(),
        store::format_time(first * 1_000_000, &utc),
        store::format_time(last * 1_000_000, &utc),
        seeded.as_secs_f64()
    );
    println!("  open {base}/ and sign in as alice (an investor and household), admin or operator,");
    println!(
        "  password {:?} ({accounts} accounts: every investor, the town hall as mairie)\n",
        crate::demo_data::DEMO_PASSWORD
    );
    println!("  reader token: {reader}\n  writer token: {writer}\n");
    println!("Try, in another terminal:");
    println!("  curl -s {base}/api/v1/streams -H 'Authorization: Bearer {reader}'");
    println!(
        "  curl -s '{base}/api/v1/streams'                      # open data only: the PV plant and its inverter"
    );
    println!(
        "  curl -s '{base}/api/v1/aggregate?stream={SCHOOL}&stream={HOUSE}&from={}&to={}&every=P1M&fn=mean,max&tz=Europe/Paris' -H 'Authorization: Bearer {reader}'",
        first,
        last + STEP
    );
    println!(
        "  curl -s '{base}/api/v1/profile?stream={SCHOOL}&stream={HOUSE}&stream={PLANT}&from={}&to={}&by=hour-of-day&tz=Europe/Paris' -H 'Authorization: Bearer {reader}'",
        first,
        last + STEP
    );
    println!(
        "  curl -s '{base}/api/v1/records?stream={PLANT}&from={}' -H 'Accept: text/csv' | head",
        last - DAY
    );
    println!(
        "  curl -s {base}/api/v1/data -H 'Authorization: Bearer {writer}' -H 'Content-Type: application/senml+json' -d '[{{\"n\":\"demo:temperature\",\"u\":\"Cel\",\"v\":19.5}}]'"
    );
    let year_from = last + STEP - 365 * DAY;
    println!(
        "  curl -s '{base}/api/v1/projects/ecole-jaures/summary?account=alice&tz=Europe/Paris&consumption={HOUSE}' -H 'Authorization: Bearer {reader}'"
    );
    println!(
        "  curl -s '{base}/api/v1/selfconsumption?production={PLANT}&consumption={SCHOOL}&consumption={HOUSE}&from={year_from}&to={}&step=month&tz=Europe/Paris' -H 'Authorization: Bearer {reader}'",
        last + STEP
    );
    println!(
        "  curl -s {base}/api/v1/status -H 'Authorization: Bearer {reader}'              # peers, outbox, devices, exchanges"
    );
    println!("  the API: {base}/api/v1/openapi.json    metrics: {base}/metrics\n");
    println!(
        "A household's water heater, dishwasher and car, driven over MQTT (simulated devices on the node's own broker, mqtt://{}):",
        demo.mqtt_listen
    );
    println!(
        "  curl -s {base}/api/v1/control/equipments -H 'Authorization: Bearer {reader}'   # the water heater waits for off-peak hours (22:00-06:00 UTC)"
    );
    println!(
        "  curl -s {base}/api/v1/control/stimulations -H 'Authorization: Bearer {writer}' -d '{{\"kind\":\"consume-now\",\"equipments\":[\"dishwasher\",\"car\"],\"until\":{}}}'",
        now + 3600
    );
    println!(
        "  # the dishwasher's cycle runs 3 minutes, then it goes back to manual; see docs/control.md\n"
    );
    crate::demo_household::spawn_devices(demo.mqtt_listen);
    let household = crate::demo_household::control(&demo.mqtt_listen.to_string());
    crate::node_cmd::serve(&options, Serve::on(demo.listen).driving(household))
}

/// Revokes and recreates a token, so that its secret can be shown.
fn fresh_token(store: &Store, name: &str, scope: Scope) -> Result<String, String> {
    store.revoke_token(name).map_err(|e| e.to_string())?;
    store
        .create_token(name, scope, StreamPattern::all())
        .map_err(|e| e.to_string())
}

/// Writes the live readings every [`LIVE_EVERY`] seconds, as long as the
/// demo runs.
fn spawn_live(store: Store) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(LIVE_EVERY as u64));
            let now = store::Time::now().as_micros() / 1_000_000;
            if let Err(e) = store.ingest(&live(now), Some("demo")) {
                tracing::warn!("the demo's live readings: {e}");
            }
        }
    });
}
