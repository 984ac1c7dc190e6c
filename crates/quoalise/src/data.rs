//! `<quoalise><data><meta/><sensml/></data></quoalise>`: a stream's
//! metadata and records.

use base64::Engine;
use minidom::Element;
use senml::{Format, Record, ResolvedPack};

use crate::{FEDWATT_NS, NS, Result, element, malformed};

/// How records travel inside `<data>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// `<sensml xmlns="urn:ietf:params:xml:ns:senml">` with one element per
    /// record: what every Quoalise client reads.
    #[default]
    Xml,
    /// `<senml-cbor xmlns="urn:fedwatt:0">` holding the pack as SenML CBOR
    /// in base64: one element whatever the number of records.
    Cbor,
}

/// Quoalise metadata of a stream (`<meta>`); every part is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    /// `device/@type` (`electricity-meter`).
    pub device_type: Option<String>,
    /// `device/identifier/@authority` (`enedis`).
    pub identifier_authority: Option<String>,
    /// `device/identifier/@type` (`prm`).
    pub identifier_type: Option<String>,
    /// `device/identifier/@value`.
    pub identifier_value: Option<String>,
    /// `measurement/physical/@quantity` (`power`).
    pub quantity: Option<String>,
    /// `measurement/physical/@type` (`electrical`).
    pub physical_type: Option<String>,
    /// `measurement/physical/@unit` (`W`).
    pub unit: Option<String>,
    /// `measurement/business/@graph` (`load-profile`).
    pub graph: Option<String>,
    /// `measurement/business/@direction` (`consumption`).
    pub direction: Option<String>,
    /// `measurement/aggregate/@type` (`average`).
    pub aggregate: Option<String>,
    /// `measurement/sampling/@interval` (`PT30M`).
    pub sampling_interval: Option<String>,
}

impl Meta {
    /// The `<meta>` element.
    pub fn to_element(&self) -> Element {
        let mut meta = Element::builder("meta", NS);
        if self.device_type.is_some()
            || self.identifier_authority.is_some()
            || self.identifier_type.is_some()
            || self.identifier_value.is_some()
        {
            let mut device = element("device", NS, &[("type", self.device_type.as_deref())]);
            if self.identifier_authority.is_some()
                || self.identifier_type.is_some()
                || self.identifier_value.is_some()
            {
                device = device.append(element(
                    "identifier",
                    NS,
                    &[
                        ("authority", self.identifier_authority.as_deref()),
                        ("type", self.identifier_type.as_deref()),
                        ("value", self.identifier_value.as_deref()),
                    ],
                ));
            }
            meta = meta.append(device);
        }
        let parts: Vec<Element> = [
            element(
                "physical",
                NS,
                &[
                    ("quantity", self.quantity.as_deref()),
                    ("type", self.physical_type.as_deref()),
                    ("unit", self.unit.as_deref()),
                ],
            ),
            element(
                "business",
                NS,
                &[
                    ("graph", self.graph.as_deref()),
                    ("direction", self.direction.as_deref()),
                ],
            ),
            element("aggregate", NS, &[("type", self.aggregate.as_deref())]),
            element(
                "sampling",
                NS,
                &[("interval", self.sampling_interval.as_deref())],
            ),
        ]
        .into_iter()
        .map(|b| b.build())
        .filter(|e| !e.attrs().is_empty())
        .collect();
        if !parts.is_empty() {
            meta = meta.append(Element::builder("measurement", NS).append_all(parts));
        }
        meta.build()
    }

    /// Reads a `<meta>` element; unknown parts are ignored.
    pub fn parse(meta: &Element) -> Meta {
        let attr = |parent: Option<&Element>, child: &str, name: &str| {
            parent
                .and_then(|p| p.get_child(child, NS))
                .and_then(|c| c.attr(name))
                .map(str::to_owned)
        };
        let device = meta.get_child("device", NS);
        let measurement = meta.get_child("measurement", NS);
        Meta {
            device_type: device.and_then(|d| d.attr("type")).map(str::to_owned),
            identifier_authority: attr(device, "identifier", "authority"),
            identifier_type: attr(device, "identifier", "type"),
            identifier_value: attr(device, "identifier", "value"),
            quantity: attr(measurement, "physical", "quantity"),
            physical_type: attr(measurement, "physical", "type"),
            unit: attr(measurement, "physical", "unit"),
            graph: attr(measurement, "business", "graph"),
            direction: attr(measurement, "business", "direction"),
            aggregate: attr(measurement, "aggregate", "type"),
            sampling_interval: attr(measurement, "sampling", "interval"),
        }
    }
}

/// One `<data>`: a stream's metadata and records, resolved, each with its
/// index in the pack (for errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    /// The metadata.
    pub meta: Meta,
    /// The records.
    pub records: Vec<(usize, Record)>,
}

/// A `<data>` element with `records` encoded as `encoding`. The records
/// are compacted (base name, base time, base unit) first.
pub fn data_element(meta: &Meta, records: Vec<Record>, encoding: Encoding) -> Result<Element> {
    let mut data = Element::builder("data", NS).append(meta.to_element());
    if records.is_empty() {
        // An empty answer still names the SenML namespace, as Quoalise does.
        return Ok(data
            .append(Element::builder("sensml", senml::XML_NAMESPACE))
            .build());
    }
    let pack = ResolvedPack {
        version: senml::DEFAULT_VERSION,
        records,
    };
    let raw = senml::compact(&pack).map_err(|e| crate::Error::Senml(e.to_string()))?;
    let format = match encoding {
        Encoding::Xml => Format::Xml,
        Encoding::Cbor => Format::Cbor,
    };
    let bytes = senml::encode(&raw, format).map_err(|e| crate::Error::Senml(e.to_string()))?;
    data = match encoding {
        Encoding::Xml => {
            let text = String::from_utf8_lossy(&bytes);
            let sensml: Element = text
                .parse()
                .map_err(|e| crate::Error::Senml(format!("SenML XML does not parse back: {e}")))?;
            data.append(sensml)
        }
        Encoding::Cbor => data.append(
            Element::builder("senml-cbor", FEDWATT_NS)
                .append(base64::engine::general_purpose::STANDARD.encode(&bytes)),
        ),
    };
    Ok(data.build())
}

/// `<quoalise>` around `data` elements.
pub fn quoalise_element(data: Vec<Element>) -> Element {
    Element::builder("quoalise", NS).append_all(data).build()
}

/// The `<data>` of a `<quoalise>` element, each with its records
/// resolved (relative times from `now`, seconds).
pub fn parse_quoalise(quoalise: &Element, now: f64) -> Result<Vec<Data>> {
    if !quoalise.is("quoalise", NS) {
        return malformed(format!("expected <quoalise xmlns=\"{NS}\">"));
    }
    let mut out = Vec::new();
    for (i, data) in quoalise.children().filter(|c| c.is("data", NS)).enumerate() {
        let meta = data
            .get_child("meta", NS)
            .map(Meta::parse)
            .unwrap_or_default();
        let records = if let Some(sensml) = data.get_child("sensml", senml::XML_NAMESPACE) {
            let mut text = Vec::new();
            sensml
                .write_to(&mut text)
                .map_err(|e| crate::Error::Senml(e.to_string()))?;
            if sensml.children().next().is_none() {
                Vec::new()
            } else {
                senml::resolve_slice_indexed(&text, Format::Xml, now)
                    .map_err(|e| crate::Error::Senml(format!("data {i}: {e}")))?
            }
        } else if let Some(cbor) = data.get_child("senml-cbor", FEDWATT_NS) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(cbor.text().trim())
                .map_err(|e| {
                    crate::Error::Malformed(format!("data {i}: senml-cbor is not base64: {e}"))
                })?;
            senml::resolve_slice_indexed(&bytes, Format::Cbor, now)
                .map_err(|e| crate::Error::Senml(format!("data {i}: {e}")))?
        } else {
            return malformed(format!("data {i} holds neither <sensml> nor <senml-cbor>"));
        };
        out.push(Data { meta, records });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"<quoalise xmlns="urn:quoalise:0"><data>
    <meta>
      <device type="electricity-meter">
        <identifier authority="enedis" type="prm" value="30001610071843"/>
      </device>
      <measurement>
        <physical quantity="power" type="electrical" unit="W"/>
        <business graph="load-profile" direction="consumption"/>
        <aggregate type="average"/>
        <sampling interval="PT30M"/>
      </measurement>
    </meta>
    <sensml xmlns="urn:ietf:params:xml:ns:senml">
      <senml bn="urn:dev:prm:30001610071843_consumption/power/active/raw" bt="1600041600" t="0" v="245" bu="W"/>
      <senml t="1800" v="420"/>
    </sensml>
  </data></quoalise>"#;

    #[test]
    fn the_reference_example_parses() {
        let data = parse_quoalise(&EXAMPLE.parse().unwrap(), 0.0).unwrap();
        assert_eq!(data.len(), 1);
        let d = &data[0];
        assert_eq!(d.meta.identifier_value.as_deref(), Some("30001610071843"));
        assert_eq!(d.meta.sampling_interval.as_deref(), Some("PT30M"));
        assert_eq!(d.meta.direction.as_deref(), Some("consumption"));
        assert_eq!(d.records.len(), 2);
        assert_eq!(
            &*d.records[1].1.name,
            "urn:dev:prm:30001610071843_consumption/power/active/raw"
        );
        assert_eq!(d.records[1].1.time, 1_600_043_400_000_000);
        assert_eq!(d.records[1].1.value, Some(senml::Value::Number(420.0)));
    }

    #[test]
    fn data_round_trips_in_both_encodings() {
        let original = parse_quoalise(&EXAMPLE.parse().unwrap(), 0.0)
            .unwrap()
            .remove(0);
        let records: Vec<Record> = original.records.iter().map(|(_, r)| r.clone()).collect();
        for encoding in [Encoding::Xml, Encoding::Cbor] {
            let el = quoalise_element(vec![
                data_element(&original.meta, records.clone(), encoding).unwrap(),
            ]);
            let text = String::from(&el);
            let back = parse_quoalise(&text.parse().unwrap(), 0.0)
                .unwrap()
                .remove(0);
            assert_eq!(back.meta, original.meta, "{encoding:?}");
            let got: Vec<Record> = back.records.into_iter().map(|(_, r)| r).collect();
            assert_eq!(got, records, "{encoding:?}");
        }
    }

    #[test]
    fn an_empty_answer_is_an_empty_sensml() {
        let el = quoalise_element(vec![
            data_element(&Meta::default(), Vec::new(), Encoding::Xml).unwrap(),
        ]);
        let back = parse_quoalise(&el, 0.0).unwrap();
        assert!(back[0].records.is_empty());
    }

    #[test]
    fn bad_payloads_are_refused_with_a_reason() {
        let bad = |xml: &str| {
            parse_quoalise(&xml.parse().unwrap(), 0.0)
                .unwrap_err()
                .to_string()
        };
        assert!(
            bad(r#"<quoalise xmlns="urn:quoalise:0"><data><meta/></data></quoalise>"#)
                .contains("neither <sensml> nor <senml-cbor>")
        );
        assert!(bad(r#"<quoalise xmlns="urn:quoalise:0"><data><sensml xmlns="urn:ietf:params:xml:ns:senml"><senml n="bad name!" v="1"/></sensml></data></quoalise>"#)
            .starts_with("SenML: data 0"));
        assert!(bad(r#"<quoalise xmlns="urn:quoalise:0"><data><senml-cbor xmlns="urn:fedwatt:0">@@@</senml-cbor></data></quoalise>"#)
            .contains("not base64"));
        assert!(bad(r#"<other xmlns="urn:quoalise:0"/>"#).starts_with("expected <quoalise"));
    }
}
