//! `fedwatt demo`: a node with a year of sample data, ready to explore — a
//! household's consumption, a school's, and the photovoltaic plant the
//! household co-finances, as 30-minute Linky load curves — and a household
//! whose water heater, dishwasher and car it drives (simulated devices on
//! the node's own MQTT broker, see `demo_household`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use senml::{Record, Text, Value};
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

const HOUSE: &str = "urn:dev:prm:30001610071843_consumption/power/active/raw";
const SCHOOL: &str = "urn:dev:prm:30002520083954_consumption/power/active/raw";
const PLANT: &str = "urn:dev:prm:30003630094065_production/power/active/raw";
const STEP: i64 = 1800;
const DAY: i64 = 86_400;

pub fn run(options: &NodeOptions, demo: Demo) -> Result<ExitCode, String> {
    let mut options = options.clone();
    if options.data_dir.is_none() {
        options.data_dir = Some(PathBuf::from("./fedwatt-demo"));
    }
    let config = options.config()?;
    let store = crate::node_cmd::open_store(&config)?;
    let now = store::Time::now().as_micros() / 1_000_000;
    let (records, first, last) = sample_year(now);
    let count = records.len();
    store
        .ingest(&records, Some("demo"))
        .map_err(|e| e.to_string())?;
    for (name, direction, kind) in [
        (HOUSE, "consumption", "house"),
        (SCHOOL, "consumption", "school"),
        (PLANT, "production", "pv-plant"),
    ] {
        let metadata: Metadata = serde_json::from_value(serde_json::json!({
            "device": {"type": "electricity-meter", "identifier_authority": "enedis", "identifier_type": "prm",
                       "identifier_value": name[12..26].to_owned()},
            "measurement": {"physical": "power", "type": "electrical", "unit": "W"},
            "business": {"graph": "load-curve", "direction": direction},
            "aggregate": "average",
            "sampling_interval": "PT30M",
            "licence": (name == PLANT).then_some("ODbL-1.0"),
            "labels": {"site": kind},
        }))
        .map_err(|e| e.to_string())?;
        // The plant's production is published as open data; the rest needs a token.
        store
            .set_stream(name, &metadata, name == PLANT)
            .map_err(|e| e.to_string())?;
    }
    let reader = fresh_token(&store, "demo-reader", Scope::Read)?;
    let writer = fresh_token(&store, "demo-writer", Scope::Write)?;
    let base = format!("http://{}", demo.listen);
    let utc = store::TimeZone::UTC;
    println!(
        "fedwatt demo: {count} points in {} ({} to {})\n",
        config.data_dir.display(),
        store::format_time(first * 1_000_000, &utc),
        store::format_time(last * 1_000_000, &utc)
    );
    println!("  reader token: {reader}\n  writer token: {writer}\n");
    println!("Try, in another terminal:");
    println!("  curl -s {base}/api/v1/streams -H 'Authorization: Bearer {reader}'");
    println!(
        "  curl -s '{base}/api/v1/streams'                      # open data only: the PV plant"
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

/// A year of 30-minute average power up to the last whole day before
/// `now` (seconds): returns the records, the first and the last time.
fn sample_year(now: i64) -> (Vec<(usize, Record)>, i64, i64) {
    let end = now - now.rem_euclid(DAY);
    let start = end - 365 * DAY;
    let unit = Text::from("W");
    let mut records = Vec::new();
    for (name, power) in [
        (HOUSE, house as fn(i64) -> f64),
        (SCHOOL, school),
        (PLANT, plant),
    ] {
        let name = Text::from(name);
        let mut t = start;
        while t < end {
            let value = Some(Value::Number(power(t).round()));
            let record =
                Record::new(name.clone(), t * 1_000_000, value).with_unit(Some(unit.clone()));
            records.push((records.len(), record));
            t += STEP;
        }
    }
    (records, start, end - STEP)
}

/// Local (Paris winter) hour of day and day of year, for the shapes below.
fn clock(t: i64) -> (f64, f64, i64) {
    let local = t + 3600;
    let hour = (local.rem_euclid(DAY)) as f64 / 3600.0;
    let day_of_year = (local.rem_euclid(365 * DAY) / DAY) as f64;
    let weekday = (local.div_euclid(DAY) + 3).rem_euclid(7); // 0 = Monday
    (hour, day_of_year, weekday)
}

/// Deterministic noise in [0, 1).
fn noise(t: i64, salt: i64) -> f64 {
    let x = (t / STEP)
        .wrapping_mul(2_654_435_761)
        .wrapping_add(salt.wrapping_mul(40_503));
    (x.rem_euclid(1000)) as f64 / 1000.0
}

/// How cold it is: 1 in mid-January, 0 in mid-July.
fn winter(day_of_year: f64) -> f64 {
    (1.0 + (2.0 * std::f64::consts::PI * (day_of_year - 15.0) / 365.0).cos()) / 2.0
}

fn house(t: i64) -> f64 {
    let (hour, day, _) = clock(t);
    let base = 250.0 + 900.0 * winter(day);
    let morning = if (6.5..8.5).contains(&hour) {
        900.0
    } else {
        0.0
    };
    let evening = if (18.0..22.0).contains(&hour) {
        1400.0
    } else {
        0.0
    };
    let night_water_heater = if (1.0..4.0).contains(&hour) {
        1800.0
    } else {
        0.0
    };
    base + morning + evening + night_water_heater + 300.0 * noise(t, 1)
}

fn school(t: i64) -> f64 {
    let (hour, day, weekday) = clock(t);
    let holidays = (182.0..244.0).contains(&day) || !(3.0..355.0).contains(&day);
    let open =
        weekday < 5 && !holidays && (7.5..17.5).contains(&hour) && !(weekday == 2 && hour >= 12.0);
    let heating = 6000.0 * winter(day);
    if open {
        9000.0 + heating + 2000.0 * noise(t, 2)
    } else {
        1500.0 + heating / 3.0 + 300.0 * noise(t, 3)
    }
}

fn plant(t: i64) -> f64 {
    let (hour, day, _) = clock(t);
    // Day length from 8 h (winter) to 16 h (summer), centred on 13:00 local.
    let half_day = 4.0 + 4.0 * (1.0 - winter(day));
    let x = (hour - 13.0) / half_day;
    if x.abs() >= 1.0 {
        return 0.0;
    }
    let clouds = 0.35 + 0.65 * noise(t / 7200 * 7200, 4);
    36_000.0 * (1.0 - x * x) * (0.55 + 0.45 * (1.0 - winter(day))) * clouds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_year_has_plausible_shapes() {
        let (records, first, last) = sample_year(1_732_000_000);
        assert_eq!(records.len(), 3 * 365 * 48);
        assert_eq!(last - first, 365 * DAY - STEP);
        let noon_in_june = 1_718_280_000; // 2024-06-13 12:00 UTC
        assert!(plant(noon_in_june) > 5000.0 && plant(noon_in_june - 12 * 3600) == 0.0);
        let a_tuesday_at_10 = 1_709_629_200; // 2024-03-05 09:00 UTC
        assert!(school(a_tuesday_at_10) > 9000.0 && school(a_tuesday_at_10 + 4 * DAY) < 9000.0);
    }
}
