//! The SenML units registry (RFC 8428 §12.1, with the units RFC 8798 added)
//! and RFC 8798 secondary units with their scale and offset to a registry unit.
//!
//! ```
//! use senml::units;
//! // 1.5 kWh in joules, the registry unit of energy:
//! let (unit, value) = units::normalise("kWh", 1.5).unwrap();
//! assert_eq!((unit, value), ("J", 5_400_000.0));
//! assert_eq!(units::convert(2500.0, "Wh", "kWh"), Some(2.5));
//! ```

/// A unit of the SenML units registry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    /// The symbol as it appears in `u` / `bu`.
    pub symbol: &'static str,
    /// What it measures.
    pub description: &'static str,
    /// Not recommended for new producers, still to be understood (RFC 8428 `*`).
    pub deprecated: bool,
}

/// An RFC 8798 secondary unit: `value_in_primary = scale * value + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecondaryUnit {
    /// The secondary symbol, e.g. `kWh`.
    pub symbol: &'static str,
    /// What it measures.
    pub description: &'static str,
    /// The registry unit it converts to, e.g. `J`.
    pub primary: &'static str,
    /// Multiplier to the primary unit.
    pub scale: f64,
    /// Offset added after scaling (only `dBm` has one).
    pub offset: f64,
}

macro_rules! units {
    ($($symbol:literal $description:literal $deprecated:literal;)*) => {
        &[$(Unit { symbol: $symbol, description: $description, deprecated: $deprecated }),*]
    };
}

/// The SenML units registry.
pub const REGISTRY: &[Unit] = units! {
    "m" "meter" false; "kg" "kilogram" false; "g" "gram" true; "s" "second" false;
    "A" "ampere" false; "K" "kelvin" false; "cd" "candela" false; "mol" "mole" false;
    "Hz" "hertz" false; "rad" "radian" false; "sr" "steradian" false; "N" "newton" false;
    "Pa" "pascal" false; "J" "joule" false; "W" "watt" false; "C" "coulomb" false;
    "V" "volt" false; "F" "farad" false; "Ohm" "ohm" false; "S" "siemens" false;
    "Wb" "weber" false; "T" "tesla" false; "H" "henry" false; "Cel" "degrees Celsius" false;
    "lm" "lumen" false; "lx" "lux" false; "Bq" "becquerel" false; "Gy" "gray" false;
    "Sv" "sievert" false; "kat" "katal" false; "m2" "square meter (area)" false;
    "m3" "cubic meter (volume)" false; "l" "liter (volume)" true;
    "m/s" "meter per second (velocity)" false; "m/s2" "meter per square second (acceleration)" false;
    "m3/s" "cubic meter per second (flow rate)" false; "l/s" "liter per second (flow rate)" true;
    "W/m2" "watt per square meter (irradiance)" false; "cd/m2" "candela per square meter (luminance)" false;
    "bit" "bit (information content)" false; "bit/s" "bit per second (data rate)" false;
    "lat" "degrees latitude" false; "lon" "degrees longitude" false;
    "pH" "pH value (acidity)" false; "dB" "decibel" false; "dBW" "decibel relative to 1 W" false;
    "Bspl" "bel (sound pressure level)" true; "count" "1 (counter value)" false;
    "/" "1 (ratio, e.g. value of a switch)" false; "%" "1 (ratio, e.g. value of a switch)" true;
    "%RH" "percentage (relative humidity)" false; "%EL" "percentage (remaining battery energy level)" false;
    "EL" "seconds (remaining battery energy level)" false; "1/s" "1 per second (event rate)" false;
    "1/min" "1 per minute (event rate, rpm)" true; "beat/min" "1 per minute (heart rate)" true;
    "beats" "1 (cumulative number of heart beats)" true; "S/m" "siemens per meter (conductivity)" false;
    "B" "byte (information content)" false; "VA" "volt-ampere (apparent power)" false;
    "VAs" "volt-ampere second (apparent energy)" false; "var" "volt-ampere reactive (reactive power)" false;
    "vars" "volt-ampere-reactive second (reactive energy)" false; "J/m" "joule per meter (energy per distance)" false;
    "kg/m3" "kilogram per cubic meter (mass density)" false; "deg" "degree (angle)" false;
};

macro_rules! secondary {
    ($($symbol:literal $description:literal $primary:literal $scale:expr, $offset:expr;)*) => {
        &[$(SecondaryUnit { symbol: $symbol, description: $description, primary: $primary, scale: $scale, offset: $offset }),*]
    };
}

/// The RFC 8798 secondary units.
pub const SECONDARY: &[SecondaryUnit] = secondary! {
    "ms" "millisecond" "s" 1.0 / 1000.0, 0.0;
    "min" "minute" "s" 60.0, 0.0;
    "h" "hour" "s" 3600.0, 0.0;
    "MHz" "megahertz" "Hz" 1_000_000.0, 0.0;
    "kW" "kilowatt" "W" 1000.0, 0.0;
    "kVA" "kilovolt-ampere" "VA" 1000.0, 0.0;
    "kvar" "kilovar" "var" 1000.0, 0.0;
    "Ah" "ampere-hour" "C" 3600.0, 0.0;
    "Wh" "watt-hour" "J" 3600.0, 0.0;
    "kWh" "kilowatt-hour" "J" 3_600_000.0, 0.0;
    "varh" "var-hour" "vars" 3600.0, 0.0;
    "kvarh" "kilovar-hour" "vars" 3_600_000.0, 0.0;
    "kVAh" "kilovolt-ampere-hour" "VAs" 3_600_000.0, 0.0;
    "Wh/km" "watt-hour per kilometer" "J/m" 3.6, 0.0;
    "KiB" "kibibyte" "B" 1024.0, 0.0;
    "GB" "gigabyte" "B" 1e9, 0.0;
    "Mbit/s" "megabit per second" "bit/s" 1_000_000.0, 0.0;
    "B/s" "byte per second" "bit/s" 8.0, 0.0;
    "MB/s" "megabyte per second" "bit/s" 8_000_000.0, 0.0;
    "mV" "millivolt" "V" 1.0 / 1000.0, 0.0;
    "mA" "milliampere" "A" 1.0 / 1000.0, 0.0;
    "dBm" "decibel (milliwatt)" "dBW" 1.0, -30.0;
    "ug/m3" "microgram per cubic meter" "kg/m3" 1e-9, 0.0;
    "mm/h" "millimeter per hour" "m/s" 1.0 / 3_600_000.0, 0.0;
    "m/h" "meter per hour" "m/s" 1.0 / 3600.0, 0.0;
    "ppm" "parts per million" "/" 1e-6, 0.0;
    "/100" "percent" "/" 1.0 / 100.0, 0.0;
    "/1000" "permille" "/" 1.0 / 1000.0, 0.0;
    "hPa" "hectopascal" "Pa" 100.0, 0.0;
    "mm" "millimeter" "m" 1.0 / 1000.0, 0.0;
    "cm" "centimeter" "m" 1.0 / 100.0, 0.0;
    "km" "kilometer" "m" 1000.0, 0.0;
    "km/h" "kilometer per hour" "m/s" 1.0 / 3.6, 0.0;
};

/// The registry unit with this symbol (case-sensitive, as RFC 8428 says).
pub fn lookup(symbol: &str) -> Option<&'static Unit> {
    REGISTRY.iter().find(|u| u.symbol == symbol)
}

/// The secondary unit with this symbol.
pub fn lookup_secondary(symbol: &str) -> Option<&'static SecondaryUnit> {
    SECONDARY.iter().find(|u| u.symbol == symbol)
}

/// Whether `symbol` is a registry or secondary unit.
pub fn is_known(symbol: &str) -> bool {
    lookup(symbol).is_some() || lookup_secondary(symbol).is_some()
}

/// Expresses `value` in `symbol` in its registry unit: a registry unit is
/// returned unchanged, a secondary unit is scaled. `None` for unknown units.
pub fn normalise(symbol: &str, value: f64) -> Option<(&'static str, f64)> {
    if let Some(unit) = lookup(symbol) {
        return Some((unit.symbol, value));
    }
    lookup_secondary(symbol).map(|s| (s.primary, s.scale * value + s.offset))
}

/// Converts `value` from unit `from` to unit `to` when both share a registry
/// unit (e.g. `Wh` → `kWh`, `kW` → `W`). `None` when they measure different things.
pub fn convert(value: f64, from: &str, to: &str) -> Option<f64> {
    if from == to {
        return Some(value);
    }
    let (primary_from, in_primary) = normalise(from, value)?;
    let (primary_to, one_to) = normalise(to, 0.0)?;
    if primary_from != primary_to {
        return None;
    }
    let scale_to = normalise(to, 1.0)?.1 - one_to;
    Some((in_primary - one_to) / scale_to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secondary_unit_points_to_a_registry_unit_and_symbols_are_unique() {
        for s in SECONDARY {
            assert!(lookup(s.primary).is_some(), "{} → {}", s.symbol, s.primary);
            assert!(
                lookup(s.symbol).is_none(),
                "{} is both primary and secondary",
                s.symbol
            );
        }
        let mut all: Vec<_> = REGISTRY
            .iter()
            .map(|u| u.symbol)
            .chain(SECONDARY.iter().map(|s| s.symbol))
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn energy_and_power_units_convert() {
        assert_eq!(normalise("Wh", 1.0), Some(("J", 3600.0)));
        assert_eq!(normalise("W", 7.0), Some(("W", 7.0)));
        assert_eq!(convert(1500.0, "W", "kW"), Some(1.5));
        assert_eq!(convert(3.0, "kWh", "Wh"), Some(3000.0));
        assert_eq!(convert(3.0, "kWh", "W"), None, "energy is not power");
        assert_eq!(convert(0.0, "dBm", "dBW"), Some(-30.0));
        assert_eq!(convert(-30.0, "dBW", "dBm"), Some(0.0));
        assert_eq!(normalise("furlong", 1.0), None);
        assert!(!is_known("kwh"), "units are case-sensitive");
    }
}
