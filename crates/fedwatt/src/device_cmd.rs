//! `fedwatt device …`: the equipments the node drives and their devices,
//! from the configuration file (`[[control.equipment]]`) and those added
//! at run time (kept in the store), with what the store last heard of each.
//!
//! `add` and `remove` change the store: a running node takes them at its
//! next start (`POST /api/v1/control/equipments` adds one to a running
//! node at once).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use control::settings::{DeviceSettings, EquipmentSettings};
use store::Store;

use crate::node_cmd::{NodeOptions, open_store};

/// `fedwatt device …`.
#[derive(Subcommand)]
pub enum DeviceCommand {
    /// List the equipments, their devices and their last known state.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one equipment: its settings, and what each device last said.
    Show {
        /// The equipment's name.
        name: String,
    },
    /// Add an equipment with its devices (kept in the store).
    Add(DeviceAdd),
    /// Remove an equipment added with `add` or over the API.
    Remove {
        /// The equipment's name.
        name: String,
    },
}

/// `fedwatt device add`.
#[derive(Args)]
pub struct DeviceAdd {
    /// Its name: unique; in topics, stimulations and stream names.
    #[arg(long)]
    name: String,
    /// water-heater, heater, dishwasher, washing-machine, dryer, machine,
    /// electric-vehicle.
    #[arg(long)]
    kind: String,
    /// plug, plug-and-finger, relay-and-meter, two-relays, inverted-relay.
    #[arg(long)]
    typology: String,
    /// Who is in charge at start-up: manual, piloted, not-piloted, disabled.
    #[arg(long, default_value = "manual")]
    mode: String,
    /// A group it belongs to, for stimulations (repeat for several).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// A device, as `PART:FIRMWARE:TOPIC[:CHANNEL]`
    /// (`switch:tasmota:tasmota_5A1B2C`, `finger:zigbee2mqtt:fingerbot:0`);
    /// repeat for several.
    #[arg(
        long = "device",
        value_name = "PART:FIRMWARE:TOPIC[:CHANNEL]",
        required = true
    )]
    devices: Vec<String>,
}

/// Reads `PART:FIRMWARE:TOPIC[:CHANNEL]`.
fn device_of(text: &str) -> Result<DeviceSettings, String> {
    let fields: Vec<&str> = text.split(':').collect();
    let (part, firmware, topic, channel) = match fields.as_slice() {
        [part, firmware, topic] => (part, firmware, topic, "0"),
        [part, firmware, topic, channel] => (part, firmware, topic, *channel),
        _ => {
            return Err(format!(
                "--device {text:?}: expected PART:FIRMWARE:TOPIC or PART:FIRMWARE:TOPIC:CHANNEL"
            ));
        }
    };
    let channel = channel
        .parse()
        .map_err(|_| format!("--device {text:?}: channel {channel:?} is not 0 to 255"))?;
    Ok(DeviceSettings {
        part: part.to_string(),
        firmware: firmware.to_string(),
        topic: topic.to_string(),
        channel,
    })
}

/// An equipment and where it is configured.
struct Listed {
    settings: EquipmentSettings,
    /// `file` or `added`.
    origin: &'static str,
}

fn equipments(options: &NodeOptions) -> Result<(Store, Vec<Listed>), String> {
    let config = options.config()?;
    let store = open_store(&config)?;
    let mut listed: Vec<Listed> = config
        .control
        .equipment
        .iter()
        .map(|e| Listed {
            settings: e.clone(),
            origin: "file",
        })
        .collect();
    for e in store.equipments().map_err(|e| e.to_string())? {
        let settings = serde_json::from_value::<EquipmentSettings>(e.config)
            .map_err(|err| format!("equipment {:?} in the store: {err}", e.name))?;
        listed.push(Listed {
            settings,
            origin: "added",
        });
    }
    Ok((store, listed))
}

/// The last value of stream `name` as text, with its time (µs).
fn last(store: &Store, name: &str) -> Result<Option<(i64, String)>, String> {
    let Some(info) = store.stream(name).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let Some(at) = info.last else {
        return Ok(None);
    };
    let found = store
        .records(
            &[name.to_owned()],
            store::Time::from_micros(at),
            store::Time::from_micros(at + 1),
            1,
            1,
        )
        .map_err(|e| e.to_string())?;
    let value = found
        .into_iter()
        .next()
        .and_then(|(_, records)| records.into_iter().next())
        .and_then(|r| r.value);
    Ok(value.map(|v| {
        let text = match v {
            senml::Value::Number(n) => n.to_string(),
            senml::Value::String(s) => s.to_string(),
            senml::Value::Bool(b) => b.to_string(),
            senml::Value::Data(d) => format!("{} bytes", d.len()),
        };
        (at, text)
    }))
}

fn when(at: i64) -> String {
    store::format_time(at, &store::TimeZone::UTC)
}

pub fn device(options: &NodeOptions, command: DeviceCommand) -> Result<ExitCode, String> {
    match command {
        DeviceCommand::List { json } => {
            let (store, listed) = equipments(options)?;
            if json {
                let rows: Vec<serde_json::Value> = listed
                    .iter()
                    .map(|l| {
                        let state = last(&store, &format!("equipment/{}/state", l.settings.name))?;
                        let mut row =
                            serde_json::to_value(&l.settings).map_err(|e| e.to_string())?;
                        row["origin"] = l.origin.into();
                        row["state"] = state.map(|(_, s)| s).into();
                        Ok(row)
                    })
                    .collect::<Result<_, String>>()?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?
                );
                return Ok(ExitCode::SUCCESS);
            }
            if listed.is_empty() {
                println!(
                    "no equipment: add them to [control] in the configuration file, or with `fedwatt device add`"
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<20}  {:<16}  {:<16}  {:<10}  {:<6}  {:<14}  devices",
                "name", "kind", "typology", "mode", "from", "last state"
            );
            for l in &listed {
                let e = &l.settings;
                let state = last(&store, &format!("equipment/{}/state", e.name))?
                    .map_or_else(|| "-".to_owned(), |(_, s)| s);
                let devices: Vec<String> = e
                    .device
                    .iter()
                    .map(|d| format!("{} {} {}#{}", d.part, d.firmware, d.topic, d.channel))
                    .collect();
                println!(
                    "{:<20}  {:<16}  {:<16}  {:<10}  {:<6}  {:<14}  {}",
                    e.name,
                    e.kind,
                    e.typology,
                    e.mode,
                    l.origin,
                    state,
                    devices.join(", ")
                );
            }
        }
        DeviceCommand::Show { name } => {
            let (store, listed) = equipments(options)?;
            let Some(l) = listed.iter().find(|l| l.settings.name == name) else {
                return Err(format!(
                    "no equipment is named {name:?} (see `fedwatt device list`)"
                ));
            };
            let e = &l.settings;
            println!(
                "{}: {} ({}), {} at start-up, configured in {}",
                e.name,
                e.kind,
                e.typology,
                e.mode,
                if l.origin == "file" {
                    "the configuration file"
                } else {
                    "the store (added)"
                }
            );
            if !e.groups.is_empty() {
                println!("  groups: {}", e.groups.join(", "));
            }
            match last(&store, &format!("equipment/{name}/state"))? {
                Some((at, state)) => println!("  state: {state} (since {})", when(at)),
                None => println!("  state: never driven yet"),
            }
            for d in &e.device {
                println!(
                    "  {} — {} {} channel {}",
                    d.part, d.firmware, d.topic, d.channel
                );
                for what in ["measured", "power", "order", "confirmed", "failed"] {
                    if let Some((at, value)) =
                        last(&store, &format!("equipment/{name}/{}/{what}", d.part))?
                    {
                        println!("    last {what}: {value} at {}", when(at));
                    }
                }
            }
            if let Some(plan) = store
                .plans()
                .map_err(|e| e.to_string())?
                .into_iter()
                .find(|p| p.equipment == name)
            {
                println!(
                    "  plan (from {}, {}): {}",
                    plan.source,
                    when(plan.received),
                    plan.plan
                );
            }
        }
        DeviceCommand::Add(add) => {
            let settings = EquipmentSettings {
                device: add
                    .devices
                    .iter()
                    .map(|d| device_of(d))
                    .collect::<Result<_, _>>()?,
                groups: add.groups,
                ..EquipmentSettings::new(&add.name, &add.kind, &add.typology, &add.mode)
            };
            let config = settings.to_config().map_err(|e| e.to_string())?;
            control::fleet::check_equipment(&config).map_err(|e| e.to_string())?;
            let (store, listed) = equipments(options)?;
            if listed.iter().any(|l| l.settings.name == add.name) {
                return Err(format!("an equipment named {:?} exists already", add.name));
            }
            let json = serde_json::to_value(&settings).map_err(|e| e.to_string())?;
            store
                .add_equipment(&settings.name, &json)
                .map_err(|e| e.to_string())?;
            println!(
                "equipment {} added; a running node drives it from its next start \
                 (POST /api/v1/control/equipments adds one at once)",
                settings.name
            );
        }
        DeviceCommand::Remove { name } => {
            let config = options.config()?;
            if config.control.equipment.iter().any(|e| e.name == name) {
                return Err(format!(
                    "equipment {name:?} is in the configuration file: remove it there"
                ));
            }
            let store = open_store(&config)?;
            if !store.remove_equipment(&name).map_err(|e| e.to_string())? {
                return Err(format!("no equipment named {name:?} was added"));
            }
            println!("equipment {name} removed; a running node stops driving it at its next start");
        }
    }
    Ok(ExitCode::SUCCESS)
}
