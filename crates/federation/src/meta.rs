//! A stream's metadata as the store keeps it, and as Quoalise sends it.

use quoalise::Meta;
use store::{Business, Device, Measurement, Metadata, StreamInfo};

/// The `<meta>` of a stream.
pub(crate) fn to_quoalise(stream: &StreamInfo) -> Meta {
    let m = &stream.metadata;
    let device = m.device.clone().unwrap_or_default();
    let measurement = m.measurement.clone().unwrap_or_default();
    let business = m.business.clone().unwrap_or_default();
    Meta {
        device_type: device.kind,
        identifier_authority: device.identifier_authority,
        identifier_type: device.identifier_type,
        identifier_value: device.identifier_value,
        quantity: measurement.physical,
        physical_type: measurement.kind,
        unit: measurement.unit.or_else(|| stream.unit.clone()),
        graph: business.graph,
        direction: business.direction,
        aggregate: m.aggregate.clone(),
        sampling_interval: m.sampling_interval.clone(),
    }
}

/// The store's metadata for a `<meta>` received.
pub(crate) fn from_quoalise(meta: &Meta) -> Metadata {
    let device = Device {
        kind: meta.device_type.clone(),
        identifier_authority: meta.identifier_authority.clone(),
        identifier_type: meta.identifier_type.clone(),
        identifier_value: meta.identifier_value.clone(),
    };
    let measurement = Measurement {
        physical: meta.quantity.clone(),
        kind: meta.physical_type.clone(),
        unit: meta.unit.clone(),
    };
    let business = Business {
        graph: meta.graph.clone(),
        direction: meta.direction.clone(),
    };
    Metadata {
        device: (device != Device::default()).then_some(device),
        measurement: (measurement != Measurement::default()).then_some(measurement),
        business: (business != Business::default()).then_some(business),
        aggregate: meta.aggregate.clone(),
        // Only a duration the store accepts.
        sampling_interval: meta
            .sampling_interval
            .clone()
            .filter(|s| store::parse_duration(s).is_ok()),
        ..Metadata::default()
    }
}
