//! The fleet a node drives, as its configuration gives it: equipments with
//! their devices, sites with their off-peak windows, openHASP plates; and
//! the checks that make a fleet drivable (names usable in topics, each
//! typology's devices, known sites and equipments). Whatever carries the
//! messages (MQTT today) takes these as they are.

use std::collections::HashSet;

use crate::display::EQUIPMENTS_PER_PLATE;
use crate::driver::{DeviceAddress, driver};
use crate::equipment::{Cycle, Safety};
use crate::machine::Part;
use crate::model::{EquipmentKind, Mode, Typology};
use crate::signals::OffPeak;
use crate::{Error, Result};

/// A device of an equipment.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// What it does for its equipment.
    pub part: Part,
    /// How it is reached.
    pub address: DeviceAddress,
}

/// An equipment and its devices.
#[derive(Debug, Clone)]
pub struct EquipmentConfig {
    /// Its name: unique, used in topics, stimulations and the journal.
    pub name: String,
    /// What it is.
    pub kind: EquipmentKind,
    /// How it is wired.
    pub typology: Typology,
    /// Who is in charge at start-up.
    pub mode: Mode,
    /// Its timing rules.
    pub safety: Safety,
    /// Its cycle or charge: duration, how its end shows, a car's battery.
    pub cycle: Cycle,
    /// The groups it belongs to, for stimulations.
    pub groups: Vec<String>,
    /// Its site (household), whose off-peak windows it follows where no
    /// plan decides.
    pub site: Option<String>,
    /// Its devices.
    pub devices: Vec<DeviceConfig>,
}

/// A site (a household, a building) and its off-peak windows.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// Its name, as equipments give it.
    pub name: String,
    /// Its off-peak windows, in local time.
    pub off_peak: OffPeak,
}

/// An openHASP plate in a household, and what it shows.
#[derive(Debug, Clone)]
pub struct DisplayConfig {
    /// The plate's name in its topics (`hasp/<plate>/…`).
    pub plate: String,
    /// The equipments it shows, by name, in page order
    /// ([`EQUIPMENTS_PER_PLATE`] at most).
    pub equipments: Vec<String>,
}

/// Which typology needs which parts.
fn required_parts(typology: Typology) -> &'static [Part] {
    match typology {
        Typology::Plug | Typology::RelayAndMeter | Typology::InvertedRelay => &[Part::Switch],
        Typology::PlugAndFinger => &[Part::Switch, Part::Finger],
        Typology::TwoRelays => &[Part::Switch, Part::SecondRelay],
    }
}

/// Checks one equipment: a name usable in topics, its typology's devices,
/// each device's address.
pub fn check_equipment(e: &EquipmentConfig) -> Result<()> {
    if e.name.len() > MAX_NAME_BYTES {
        return Err(Error::Invalid(format!(
            "equipment {:.40}…: a name of {} bytes, above the {MAX_NAME_BYTES} allowed",
            e.name,
            e.name.len()
        )));
    }
    if !usable_in_topics(&e.name) {
        return Err(Error::Invalid(format!(
            "equipment {:?}: a name must be non-empty, without / + #",
            e.name
        )));
    }
    for part in required_parts(e.typology) {
        if !e.devices.iter().any(|d| d.part == *part) {
            return Err(Error::Invalid(format!(
                "equipment {:?} ({}) needs a device for its {part:?}",
                e.name, e.typology
            )));
        }
    }
    for d in &e.devices {
        if d.address.topic.len() > MAX_NAME_BYTES {
            return Err(Error::Invalid(format!(
                "equipment {:?}: a device topic of {} bytes, above the {MAX_NAME_BYTES} allowed",
                e.name,
                d.address.topic.len()
            )));
        }
        driver(&d.address, "x")
            .map_err(|err| Error::Invalid(format!("equipment {:?}: {err}", e.name)))?;
    }
    Ok(())
}

/// The longest equipment name or device topic, in bytes: far above any
/// real one, and short enough that every topic built from it stays within
/// MQTT's 65,535 bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// Whether `name` can be a level of an MQTT topic: non-empty, without
/// `/`, `+` or `#`.
pub fn usable_in_topics(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '+', '#'])
}

/// Checks a fleet whole, for the node whose MQTT client id is
/// `client_id`: unique names, names usable in topics, each typology's
/// devices, each device's address, each equipment's site and each plate's
/// equipments known.
pub fn check(
    client_id: &str,
    equipments: &[EquipmentConfig],
    displays: &[DisplayConfig],
    sites: &[SiteConfig],
) -> Result<()> {
    let id = client_id;
    if !usable_in_topics(id) {
        return Err(Error::Invalid(format!(
            "client id {id:?}: it must be non-empty, without / + #"
        )));
    }
    let mut known_sites = HashSet::new();
    for site in sites {
        if !known_sites.insert(site.name.as_str()) {
            return Err(Error::Invalid(format!(
                "site {:?} is configured twice",
                site.name
            )));
        }
    }
    let mut names = HashSet::new();
    for e in equipments {
        check_equipment(e)?;
        if let Some(site) = e.site.as_deref().filter(|s| !known_sites.contains(s)) {
            return Err(Error::Invalid(format!(
                "equipment {:?} is on site {site:?}, which is not configured",
                e.name
            )));
        }
        if !names.insert(e.name.as_str()) {
            return Err(Error::Invalid(format!(
                "equipment {:?} is named twice",
                e.name
            )));
        }
    }
    let mut plates = HashSet::new();
    for p in displays {
        if !usable_in_topics(&p.plate) {
            return Err(Error::Invalid(format!(
                "display {:?}: a plate name must be non-empty, without / + #",
                p.plate
            )));
        }
        if !plates.insert(p.plate.as_str()) {
            return Err(Error::Invalid(format!(
                "display {:?} is configured twice",
                p.plate
            )));
        }
        if p.equipments.is_empty() || p.equipments.len() > EQUIPMENTS_PER_PLATE {
            return Err(Error::Invalid(format!(
                "display {:?} shows {} equipments: 1 to {EQUIPMENTS_PER_PLATE}",
                p.plate,
                p.equipments.len()
            )));
        }
        if let Some(unknown) = p.equipments.iter().find(|n| !names.contains(n.as_str())) {
            return Err(Error::Invalid(format!(
                "display {:?} shows {unknown:?}, which is no equipment",
                p.plate
            )));
        }
    }
    Ok(())
}
