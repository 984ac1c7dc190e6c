//! The labels this crate knows: what each carries and in which unit.
//!
//! One table, [`kind_of`], for both modes (no label is in both). A label
//! missing from it is kept as [`crate::Value::Raw`] text.

/// The unit of a label's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Watt-hours (energy indexes).
    WattHour,
    /// Volt-ampere-reactive-hours (reactive energy indexes).
    VarHour,
    /// Volt-amperes (apparent power).
    VoltAmpere,
    /// Kilovolt-amperes (subscribed and cut-off power).
    KiloVoltAmpere,
    /// Watts (active power averages).
    Watt,
    /// Amperes.
    Ampere,
    /// Volts.
    Volt,
}

impl Unit {
    /// The unit's symbol, as SenML (RFC 8428, RFC 8798) writes it where it
    /// has one: `Wh`, `VARh`, `VA`, `kVA`, `W`, `A`, `V`.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::WattHour => "Wh",
            Unit::VarHour => "VARh",
            Unit::VoltAmpere => "VA",
            Unit::KiloVoltAmpere => "kVA",
            Unit::Watt => "W",
            Unit::Ampere => "A",
            Unit::Volt => "V",
        }
    }
}

/// What a label's data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Content {
    /// A decimal number, written with `digits` digits (zero-padded).
    Integer {
        /// The width meters write it with; the decoder accepts any
        /// number of digits that fits a `u64`.
        digits: u8,
    },
    /// Text (tariff periods, identifiers, messages).
    Text,
    /// An identifier of exactly `digits` decimal digits (the PRM).
    Digits {
        /// The identifier's length.
        digits: u8,
    },
    /// The STGE status register: 8 hexadecimal digits.
    Status,
    /// No data (DATE carries only its horodate).
    Empty,
}

/// What [`kind_of`] says about a known label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kind {
    /// The label, as a static string.
    pub label: &'static str,
    /// What the data is.
    pub content: Content,
    /// The unit of the number, if it has one.
    pub unit: Option<Unit>,
}

const fn int(label: &'static str, digits: u8, unit: Option<Unit>) -> Kind {
    Kind {
        label,
        content: Content::Integer { digits },
        unit,
    }
}

const fn text(label: &'static str) -> Kind {
    Kind {
        label,
        content: Content::Text,
        unit: None,
    }
}

use Unit::{
    Ampere as A, KiloVoltAmpere as KVA, VarHour as VARH, Volt as V, VoltAmpere as VA, Watt as W,
    WattHour as WH,
};

/// Every known label, historic then standard.
pub const KNOWN: &[Kind] = &[
    // Historic mode.
    text("ADCO"),
    text("OPTARIF"),
    int("ISOUSC", 2, Some(A)),
    int("BASE", 9, Some(WH)),
    int("HCHC", 9, Some(WH)),
    int("HCHP", 9, Some(WH)),
    int("EJPHN", 9, Some(WH)),
    int("EJPHPM", 9, Some(WH)),
    int("BBRHCJB", 9, Some(WH)),
    int("BBRHPJB", 9, Some(WH)),
    int("BBRHCJW", 9, Some(WH)),
    int("BBRHPJW", 9, Some(WH)),
    int("BBRHCJR", 9, Some(WH)),
    int("BBRHPJR", 9, Some(WH)),
    text("PTEC"),
    text("DEMAIN"),
    int("IINST", 3, Some(A)),
    int("IINST1", 3, Some(A)),
    int("IINST2", 3, Some(A)),
    int("IINST3", 3, Some(A)),
    int("ADPS", 3, Some(A)),
    int("IMAX", 3, Some(A)),
    int("IMAX1", 3, Some(A)),
    int("IMAX2", 3, Some(A)),
    int("IMAX3", 3, Some(A)),
    int("PMAX", 5, Some(W)),
    int("PAPP", 5, Some(VA)),
    text("HHPHC"),
    text("MOTDETAT"),
    text("PPOT"),
    // Standard mode.
    text("ADSC"),
    text("VTIC"),
    Kind {
        label: "DATE",
        content: Content::Empty,
        unit: None,
    },
    text("NGTF"),
    text("LTARF"),
    int("EAST", 9, Some(WH)),
    int("EASF01", 9, Some(WH)),
    int("EASF02", 9, Some(WH)),
    int("EASF03", 9, Some(WH)),
    int("EASF04", 9, Some(WH)),
    int("EASF05", 9, Some(WH)),
    int("EASF06", 9, Some(WH)),
    int("EASF07", 9, Some(WH)),
    int("EASF08", 9, Some(WH)),
    int("EASF09", 9, Some(WH)),
    int("EASF10", 9, Some(WH)),
    int("EASD01", 9, Some(WH)),
    int("EASD02", 9, Some(WH)),
    int("EASD03", 9, Some(WH)),
    int("EASD04", 9, Some(WH)),
    int("EAIT", 9, Some(WH)),
    int("ERQ1", 9, Some(VARH)),
    int("ERQ2", 9, Some(VARH)),
    int("ERQ3", 9, Some(VARH)),
    int("ERQ4", 9, Some(VARH)),
    int("IRMS1", 3, Some(A)),
    int("IRMS2", 3, Some(A)),
    int("IRMS3", 3, Some(A)),
    int("URMS1", 3, Some(V)),
    int("URMS2", 3, Some(V)),
    int("URMS3", 3, Some(V)),
    int("PREF", 2, Some(KVA)),
    int("PCOUP", 2, Some(KVA)),
    int("SINSTS", 5, Some(VA)),
    int("SINSTS1", 5, Some(VA)),
    int("SINSTS2", 5, Some(VA)),
    int("SINSTS3", 5, Some(VA)),
    int("SMAXSN", 5, Some(VA)),
    int("SMAXSN1", 5, Some(VA)),
    int("SMAXSN2", 5, Some(VA)),
    int("SMAXSN3", 5, Some(VA)),
    int("SMAXSN-1", 5, Some(VA)),
    int("SMAXSN1-1", 5, Some(VA)),
    int("SMAXSN2-1", 5, Some(VA)),
    int("SMAXSN3-1", 5, Some(VA)),
    int("SINSTI", 5, Some(VA)),
    int("SMAXIN", 5, Some(VA)),
    int("SMAXIN-1", 5, Some(VA)),
    int("CCASN", 5, Some(W)),
    int("CCASN-1", 5, Some(W)),
    int("CCAIN", 5, Some(W)),
    int("CCAIN-1", 5, Some(W)),
    int("UMOY1", 3, Some(V)),
    int("UMOY2", 3, Some(V)),
    int("UMOY3", 3, Some(V)),
    Kind {
        label: "STGE",
        content: Content::Status,
        unit: None,
    },
    text("DPM1"),
    text("FPM1"),
    text("DPM2"),
    text("FPM2"),
    text("DPM3"),
    text("FPM3"),
    text("MSG1"),
    text("MSG2"),
    Kind {
        label: "PRM",
        content: Content::Digits { digits: 14 },
        unit: None,
    },
    int("RELAIS", 3, None),
    int("NTARF", 2, None),
    int("NJOURF", 2, None),
    int("NJOURF+1", 2, None),
    text("PJOURF+1"),
    text("PPOINTE"),
];

/// What a label carries, or `None` for a label this crate does not know.
pub fn kind_of(label: &[u8]) -> Option<&'static Kind> {
    // A linear scan of ~100 short labels costs more than a hash; the first
    // byte and the length cut it to a handful of comparisons.
    let first = *label.first()?;
    KNOWN.iter().find(|k| {
        k.label.len() == label.len()
            && k.label.as_bytes()[0] == first
            && k.label.as_bytes() == label
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_listed_once() {
        for (i, k) in KNOWN.iter().enumerate() {
            assert_eq!(kind_of(k.label.as_bytes()), Some(k), "{}", k.label);
            assert!(
                KNOWN[i + 1..].iter().all(|o| o.label != k.label),
                "{} twice",
                k.label
            );
        }
    }

    #[test]
    fn the_issue_s_labels_are_known_with_their_units() {
        let unit = |l: &str| kind_of(l.as_bytes()).map(|k| k.unit);
        assert_eq!(unit("BASE"), Some(Some(Unit::WattHour)));
        assert_eq!(unit("EASF10"), Some(Some(Unit::WattHour)));
        assert_eq!(unit("EASD04"), Some(Some(Unit::WattHour)));
        assert_eq!(unit("PAPP"), Some(Some(Unit::VoltAmpere)));
        assert_eq!(unit("SINSTI"), Some(Some(Unit::VoltAmpere)));
        assert_eq!(unit("URMS3"), Some(Some(Unit::Volt)));
        assert_eq!(unit("IRMS2"), Some(Some(Unit::Ampere)));
        assert_eq!(unit("PTEC"), Some(None));
        assert_eq!(unit("EASF11"), None);
        assert_eq!(unit(""), None);
    }
}
