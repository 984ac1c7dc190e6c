//! The demo's sample data: a town's energy for a year, as 30-minute load
//! curves (Linky meters read by Enedis), and live readings every few
//! seconds; the cooperative PV plant on the school's roof and its
//! investors. Deterministic: the same `now` gives the same points.
//!
//! The town: five households (the first one's equipments are driven, see
//! `demo_household`), the Jean Jaurès school, the town hall, and the
//! plant of 96 m² (about 18 kWp) on the school's roof, owned by a
//! cooperative of 400 shares of 150 EUR.

use senml::{Record, Text, Value};
use store::{AccountChange, NewAccount, Project, Role, Store};

pub const STEP: i64 = 1800;
pub const DAY: i64 = 86_400;

/// The first household: its equipments are the ones the demo drives.
pub const HOUSE: &str = "urn:dev:prm:30001610071843_consumption/power/active/raw";
pub const SCHOOL: &str = "urn:dev:prm:30002520083954_consumption/power/active/raw";
pub const TOWN_HALL: &str = "urn:dev:prm:30004740105176_consumption/power/active/raw";
pub const PLANT: &str = "urn:dev:prm:30003630094065_production/power/active/raw";
/// The first household's meter, read live on its TIC port (SINSTS).
pub const HOUSE_LIVE: &str = "urn:dev:prm:30001610071843_consumption/power/apparent/raw";
/// The plant's inverter, read live.
pub const PLANT_LIVE: &str = "ecole-jaures:inverter/power/active";
/// Seconds between live readings.
pub const LIVE_EVERY: i64 = 5;

/// A site with a load curve.
pub struct Site {
    /// Its stream.
    pub stream: &'static str,
    /// `consumption` or `production`.
    pub direction: &'static str,
    /// What it is, as the stream's `site` label.
    pub label: &'static str,
    /// Its average power (W) over the 30 minutes from `t` (s).
    pub power: fn(i64) -> f64,
}

/// Every site with a load curve.
pub const SITES: [Site; 8] = [
    Site {
        stream: HOUSE,
        direction: "consumption",
        label: "house-a",
        power: house_a,
    },
    Site {
        stream: "urn:dev:prm:30001610071850_consumption/power/active/raw",
        direction: "consumption",
        label: "house-b",
        power: house_b,
    },
    Site {
        stream: "urn:dev:prm:30001610071867_consumption/power/active/raw",
        direction: "consumption",
        label: "house-c",
        power: house_c,
    },
    Site {
        stream: "urn:dev:prm:30001610071874_consumption/power/active/raw",
        direction: "consumption",
        label: "house-d",
        power: house_d,
    },
    Site {
        stream: "urn:dev:prm:30001610071881_consumption/power/active/raw",
        direction: "consumption",
        label: "house-e",
        power: house_e,
    },
    Site {
        stream: SCHOOL,
        direction: "consumption",
        label: "school",
        power: school,
    },
    Site {
        stream: TOWN_HALL,
        direction: "consumption",
        label: "town-hall",
        power: town_hall,
    },
    Site {
        stream: PLANT,
        direction: "production",
        label: "pv-plant",
        power: plant,
    },
];

/// The cooperative's investors (account names) and their shares: 267 of
/// the 400 shares are sold.
pub const INVESTORS: [(&str, u64); 13] = [
    ("alice", 12),
    ("bruno", 8),
    ("chloe", 20),
    ("david", 4),
    ("emma", 10),
    ("farid", 6),
    ("gaelle", 15),
    ("hugo", 5),
    ("ines", 30),
    ("jules", 2),
    ("karim", 10),
    ("louise", 25),
    ("mairie", 120),
];

/// The plant as a project of the cooperative, commissioned on `date`.
pub fn project(commissioned: String) -> Project {
    Project {
        id: "ecole-jaures".into(),
        title: "Centrale solaire de l'école Jaurès".into(),
        description: "96 m² of panels (about 18 kWp) on the roof of the Jean Jaurès school, \
                      financed by the town's inhabitants and the town hall"
            .into(),
        total_shares: 400,
        share_price: 150.0,
        currency: "EUR".into(),
        panel_area_m2: 96.0,
        production_stream: PLANT.into(),
        maintenance_budget: 1200.0,
        commissioned,
    }
}

/// Adds the project, or brings it back to the demo's, and its investors.
pub fn seed_project(store: &Store, commissioned: String) -> Result<(), String> {
    let project = project(commissioned);
    let result = match store.project(&project.id).map_err(|e| e.to_string())? {
        Some(_) => store.update_project(&project),
        None => store.add_project(&project),
    };
    result.map_err(|e| e.to_string())?;
    for (account, shares) in INVESTORS {
        store
            .set_investment(&project.id, account, shares)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A year of 30-minute average power of every site, up to the last whole
/// UTC day before `now` (seconds): the records, the first and last time.
pub fn sample_year(now: i64) -> (Vec<(usize, Record)>, i64, i64) {
    let end = now - now.rem_euclid(DAY);
    let start = end - 365 * DAY;
    let unit = Text::from("W");
    let mut records = Vec::with_capacity(SITES.len() * 365 * 48);
    for site in &SITES {
        let name = Text::from(site.stream);
        let mut t = start;
        while t < end {
            let value = Some(Value::Number((site.power)(t).round()));
            let record =
                Record::new(name.clone(), t * 1_000_000, value).with_unit(Some(unit.clone()));
            records.push((records.len(), record));
            t += STEP;
        }
    }
    (records, start, end - STEP)
}

/// The live readings at `t` (s): the first household's apparent power and
/// the plant's inverter, with the second's noise.
pub fn live(t: i64) -> Vec<(usize, Record)> {
    let wobble = |salt: i64| 0.9 + 0.2 * noise(t / LIVE_EVERY * STEP, salt);
    [
        (HOUSE_LIVE, "VA", house_a(t) * wobble(7)),
        (PLANT_LIVE, "W", plant(t) * wobble(8)),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, unit, value))| {
        let record = Record::new(
            Text::from(name),
            t * 1_000_000,
            Some(Value::Number(value.round())),
        )
        .with_unit(Some(Text::from(unit)));
        (i, record)
    })
    .collect()
}

/// The live readings of `[from, to)` (s), every [`LIVE_EVERY`] seconds.
pub fn live_between(from: i64, to: i64) -> Vec<(usize, Record)> {
    let first = from + (LIVE_EVERY - from.rem_euclid(LIVE_EVERY)) % LIVE_EVERY;
    let mut records = Vec::new();
    for t in (first..to).step_by(LIVE_EVERY as usize) {
        for (_, r) in live(t) {
            records.push((records.len(), r));
        }
    }
    records
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

fn within(hour: f64, from: f64, to: f64) -> f64 {
    if (from..to).contains(&hour) { 1.0 } else { 0.0 }
}

/// A household: `heating` W of electric heating in mid-winter, a water
/// heater of `water_heater` W from 1:00 to 4:00, and `home` when someone is
/// home in the day (W).
fn household(t: i64, heating: f64, water_heater: f64, home: f64, salt: i64) -> f64 {
    let (hour, day, weekday) = clock(t);
    // Someone is home all day at the weekend, a third of it on weekdays.
    let presence = if weekday >= 5 { 1.0 } else { 0.3 };
    250.0
        + heating * winter(day)
        + 900.0 * within(hour, 6.5, 8.5)
        + 1400.0 * within(hour, 18.0, 22.0)
        + water_heater * within(hour, 1.0, 4.0)
        + home * presence * within(hour, 9.0, 17.0)
        + 300.0 * noise(t, salt)
}

fn house_a(t: i64) -> f64 {
    household(t, 900.0, 1800.0, 300.0, 1)
}

fn house_b(t: i64) -> f64 {
    // All electric, a family at home.
    household(t, 2500.0, 2200.0, 900.0, 11)
}

fn house_c(t: i64) -> f64 {
    // A flat with gas heating.
    0.6 * household(t, 0.0, 1200.0, 200.0, 12)
}

fn house_d(t: i64) -> f64 {
    // Working from home, a heat pump.
    household(t, 1200.0, 0.0, 1500.0, 13)
}

fn house_e(t: i64) -> f64 {
    household(t, 1600.0, 2000.0, 500.0, 14)
}

/// A public building: `open_w` W when open, `closed_w` when closed, and
/// heating of up to `heating_w` in mid-winter (a third of it when closed).
fn building(t: i64, open: bool, open_w: f64, closed_w: f64, heating_w: f64, salt: i64) -> f64 {
    let (_, day, _) = clock(t);
    let heating = heating_w * winter(day);
    if open {
        open_w + heating + 0.2 * open_w * noise(t, salt)
    } else {
        closed_w + heating / 3.0 + 0.2 * closed_w * noise(t, salt + 1)
    }
}

fn school(t: i64) -> f64 {
    let (hour, day, weekday) = clock(t);
    let holidays = (182.0..244.0).contains(&day) || !(3.0..355.0).contains(&day);
    let open =
        weekday < 5 && !holidays && (7.5..17.5).contains(&hour) && !(weekday == 2 && hour >= 12.0);
    building(t, open, 9000.0, 1500.0, 6000.0, 2)
}

fn town_hall(t: i64) -> f64 {
    let (hour, _, weekday) = clock(t);
    let open =
        weekday < 5 && (8.5..18.0).contains(&hour) || weekday == 5 && (9.0..12.0).contains(&hour);
    building(t, open, 4000.0, 1200.0, 3500.0, 5)
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
    // 96 m² at about 190 Wp/m²: 18 kWp, reached on a clear summer noon.
    18_000.0 * (1.0 - x * x) * (0.55 + 0.45 * (1.0 - winter(day))) * clouds
}

/// The password of every demo account: the demo is for trying on one's
/// own machine, not for a network.
pub const DEMO_PASSWORD: &str = "fedwatt-demo";

/// The demo's accounts: an administrator, an operator, and a member for
/// every investor, the first five with their household's meter (every
/// stream of that meter, the live one too) as their own streams and
/// consumption, the town hall with the school's and its own.
fn demo_accounts() -> Result<Vec<NewAccount>, String> {
    let meter = |stream: &str| stream.split('_').next().unwrap_or(stream).to_owned() + "*";
    let member = |name: &str, display: &str, streams: &[&str], consumption: Option<&str>| {
        Ok::<_, String>(NewAccount {
            name: name.into(),
            display_name: display.into(),
            role: Role::Member,
            password: DEMO_PASSWORD.into(),
            streams: streams
                .iter()
                .map(|s| meter(s).parse())
                .collect::<Result<_, _>>()?,
            consumption_stream: consumption.map(str::to_owned),
        })
    };
    let mut accounts = vec![
        NewAccount {
            name: "admin".into(),
            display_name: "Administratrice de la coopérative".into(),
            role: Role::Admin,
            password: DEMO_PASSWORD.into(),
            streams: Vec::new(),
            consumption_stream: None,
        },
        NewAccount {
            name: "operator".into(),
            display_name: "Opérateur du nœud".into(),
            role: Role::Operator,
            password: DEMO_PASSWORD.into(),
            streams: Vec::new(),
            consumption_stream: None,
        },
    ];
    let households = [
        "Alice Martin",
        "Bruno Leroy",
        "Chloé Garnier",
        "David Morel",
        "Emma Roux",
    ];
    for ((name, _), (display, site)) in INVESTORS.iter().zip(households.iter().zip(&SITES)) {
        accounts.push(member(name, display, &[site.stream], Some(site.stream))?);
    }
    let others = [
        "Farid Benali",
        "Gaëlle Le Goff",
        "Hugo Petit",
        "Inès Caron",
        "Jules Fabre",
        "Karim Haddad",
        "Louise Perrin",
    ];
    for ((name, _), display) in INVESTORS[households.len()..].iter().zip(others) {
        accounts.push(member(name, display, &[], None)?);
    }
    accounts.push(member(
        "mairie",
        "Mairie",
        &[TOWN_HALL, SCHOOL],
        Some(TOWN_HALL),
    )?);
    Ok(accounts)
}

/// Creates the demo's accounts, or brings them back to the demo's
/// (password included); returns how many.
pub fn seed_accounts(store: &Store) -> Result<usize, String> {
    let accounts = demo_accounts()?;
    for account in &accounts {
        let done = match store.account(&account.name).map_err(|e| e.to_string())? {
            None => store.add_account(account).map(drop),
            Some(_) => store
                .update_account(
                    &account.name,
                    &AccountChange {
                        display_name: Some(account.display_name.clone()),
                        role: Some(account.role),
                        password: Some(account.password.clone()),
                        streams: Some(account.streams.clone()),
                        consumption_stream: Some(account.consumption_stream.clone()),
                    },
                )
                .map(drop),
        };
        done.map_err(|e| format!("demo account {}: {e}", account.name))?;
    }
    Ok(accounts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_year_has_plausible_shapes() {
        let (records, first, last) = sample_year(1_732_000_000);
        assert_eq!(records.len(), SITES.len() * 365 * 48);
        assert_eq!(last - first, 365 * DAY - STEP);
        let noon_in_june = 1_718_280_000; // 2024-06-13 12:00 UTC
        assert!(plant(noon_in_june) > 2500.0 && plant(noon_in_june - 12 * 3600) == 0.0);
        assert!(plant(noon_in_june) <= 18_000.0);
        let a_tuesday_at_10 = 1_709_629_200; // 2024-03-05 09:00 UTC
        assert!(school(a_tuesday_at_10) > 9000.0 && school(a_tuesday_at_10 + 4 * DAY) < 9000.0);
        assert!(town_hall(a_tuesday_at_10) > town_hall(a_tuesday_at_10 + 4 * DAY));
        // The heat pump house uses more on a January evening than the flat.
        let january_evening = 1_705_341_600; // 2024-01-15 18:00 UTC
        assert!(house_d(january_evening) > house_c(january_evening));
    }

    #[test]
    fn the_shares_sold_fit_the_project() {
        let sold: u64 = INVESTORS.iter().map(|(_, s)| s).sum();
        assert!(sold <= project(String::new()).total_shares, "{sold}");
        for (account, _) in INVESTORS {
            store::check_account(account).unwrap();
        }
    }

    #[test]
    fn live_readings_come_every_few_seconds() {
        let records = live_between(1_718_280_001, 1_718_280_031);
        // 1_718_280_005 … 1_718_280_030: six instants, two readings each.
        assert_eq!(records.len(), 12);
        assert_eq!(records[0].1.time, 1_718_280_005 * 1_000_000);
    }
}
