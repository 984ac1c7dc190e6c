//! fedwatt's extensions under `urn:fedwatt:0`: elements a Quoalise client
//! does not know and may ignore.

use minidom::Element;

use crate::{FEDWATT_NS, Meta, NS, Result, element, malformed};

/// The header of a push: `<push xmlns="urn:fedwatt:0" seq="…" grant="…" retention="…"/>`,
/// beside the `<quoalise>` payload in the `<message>`.
#[derive(Debug, Clone, PartialEq)]
pub struct PushHeader {
    /// The sender's sequence number; the receiver drops one it has seen.
    pub seq: i64,
    /// The sender's grant the data is sent under.
    pub grant: i64,
    /// How long the receiver may keep the data (ISO 8601 duration).
    pub retention: Option<String>,
}

fn int_attr(el: &Element, name: &str) -> Result<i64> {
    match el.attr(name).map(str::parse::<i64>) {
        Some(Ok(v)) => Ok(v),
        Some(Err(_)) => malformed(format!(
            "<{}> {name}={:?} is not an integer",
            el.name(),
            el.attr(name).unwrap_or("")
        )),
        None => malformed(format!("<{}> has no {name} attribute", el.name())),
    }
}

impl PushHeader {
    /// The `<push/>` element.
    pub fn to_element(&self) -> Element {
        element(
            "push",
            FEDWATT_NS,
            &[
                ("seq", Some(&self.seq.to_string())),
                ("grant", Some(&self.grant.to_string())),
                ("retention", self.retention.as_deref()),
            ],
        )
        .build()
    }

    /// Reads a `<push/>` element.
    pub fn parse(el: &Element) -> Result<PushHeader> {
        Ok(PushHeader {
            seq: int_attr(el, "seq")?,
            grant: int_attr(el, "grant")?,
            retention: el.attr("retention").map(str::to_owned),
        })
    }
}

/// `<terms xmlns="urn:fedwatt:0" grant="…" retention="…"/>` in a history
/// answer: the grant it is given under, and how long it may be kept.
pub fn terms_element(grant: i64, retention: Option<&str>) -> Element {
    element(
        "terms",
        FEDWATT_NS,
        &[
            ("grant", Some(&grant.to_string())),
            ("retention", retention),
        ],
    )
    .build()
}

/// Reads the `<terms/>` among a command's children: (grant, retention).
pub fn parse_terms(command: &Element) -> Result<Option<(i64, Option<String>)>> {
    let Some(t) = command.get_child("terms", FEDWATT_NS) else {
        return Ok(None);
    };
    Ok(Some((
        int_attr(t, "grant")?,
        t.attr("retention").map(str::to_owned),
    )))
}

/// `<revoked xmlns="urn:fedwatt:0" grant="…" seq="…"/>`: the sender revoked
/// its grant; the receiver deletes what it received under it.
pub fn revoked_element(grant: i64, seq: i64) -> Element {
    element(
        "revoked",
        FEDWATT_NS,
        &[
            ("grant", Some(&grant.to_string())),
            ("seq", Some(&seq.to_string())),
        ],
    )
    .build()
}

/// Reads a `<revoked/>` element: (grant, seq).
pub fn parse_revoked(el: &Element) -> Result<(i64, i64)> {
    Ok((int_attr(el, "grant")?, int_attr(el, "seq")?))
}

/// Sequence numbers one `<received/>` may acknowledge, at most: a peer
/// cannot make the receiver expand a range without end.
pub const RECEIVED_MAX: usize = 4096;

/// `<received xmlns="urn:fedwatt:0" seqs="3-7 9"/>`: the pushes a fedwatt
/// node stored (or dropped as duplicates), by sequence number, in one
/// message. Between fedwatt nodes it stands for one XEP-0184 receipt per
/// push, so that a busy stream costs the servers one stanza per push, not
/// two. `seqs` are sorted ranges `first-last` and single numbers.
pub fn received_element(seqs: &[i64]) -> Element {
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let first = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        ranges.push(if sorted[i] == first {
            first.to_string()
        } else {
            format!("{first}-{}", sorted[i])
        });
        i += 1;
    }
    element("received", FEDWATT_NS, &[("seqs", Some(&ranges.join(" ")))]).build()
}

/// Reads a `<received seqs="…"/>` element: the sequence numbers, at most
/// [`RECEIVED_MAX`].
pub fn parse_received(el: &Element) -> Result<Vec<i64>> {
    let Some(text) = el.attr("seqs") else {
        return malformed("<received> has no seqs attribute");
    };
    let number = |s: &str| {
        s.parse::<i64>().map_err(|_| {
            crate::Error::Malformed(format!("<received> seqs: {s:?} is not an integer"))
        })
    };
    let mut seqs = Vec::new();
    for part in text.split_ascii_whitespace() {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(part)?, number(part)?),
        };
        if last < first {
            return malformed(format!("<received> seqs: {part:?} is a backward range"));
        }
        if (last - first) as u64 >= (RECEIVED_MAX - seqs.len()) as u64 {
            return malformed(format!(
                "<received> acknowledges more than {RECEIVED_MAX} pushes"
            ));
        }
        seqs.extend(first..=last);
    }
    Ok(seqs)
}

/// `<page xmlns="urn:fedwatt:0" next="…"/>`: a history answer stopped short;
/// ask again from `next` for the rest.
pub fn page_element(next: &str) -> Element {
    element("page", FEDWATT_NS, &[("next", Some(next))]).build()
}

/// The `next` of a `<page/>` among a command's children, if any.
pub fn parse_page(command: &Element) -> Option<String> {
    command
        .get_child("page", FEDWATT_NS)
        .and_then(|p| p.attr("next"))
        .map(str::to_owned)
}

/// A stream in a catalogue answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CatalogueEntry {
    /// The stream's name.
    pub name: String,
    /// Its unit.
    pub unit: Option<String>,
    /// Number of records.
    pub count: u64,
    /// First record's time (RFC 3339), if any.
    pub first: Option<String>,
    /// Last record's time (RFC 3339), if any.
    pub last: Option<String>,
    /// The grant that lets the requester see it.
    pub grant: i64,
    /// The aggregation the grant imposes (`PT1H`), if any.
    pub min_aggregation: Option<String>,
    /// The history depth the grant allows, if limited.
    pub max_history: Option<String>,
    /// Its metadata.
    pub meta: Meta,
}

/// `<catalogue xmlns="urn:fedwatt:0">` with one `<stream>` per entry.
pub fn catalogue_element(entries: &[CatalogueEntry]) -> Element {
    Element::builder("catalogue", FEDWATT_NS)
        .append_all(entries.iter().map(|e| {
            element(
                "stream",
                FEDWATT_NS,
                &[
                    ("name", Some(&e.name)),
                    ("unit", e.unit.as_deref()),
                    ("count", Some(&e.count.to_string())),
                    ("first", e.first.as_deref()),
                    ("last", e.last.as_deref()),
                    ("grant", Some(&e.grant.to_string())),
                    ("min-aggregation", e.min_aggregation.as_deref()),
                    ("max-history", e.max_history.as_deref()),
                ],
            )
            .append(e.meta.to_element())
            .build()
        }))
        .build()
}

/// Reads a `<catalogue>` element.
pub fn parse_catalogue(el: &Element) -> Result<Vec<CatalogueEntry>> {
    if !el.is("catalogue", FEDWATT_NS) {
        return malformed("expected <catalogue xmlns=\"urn:fedwatt:0\">");
    }
    el.children()
        .filter(|c| c.is("stream", FEDWATT_NS))
        .map(|s| {
            let text = |n: &str| s.attr(n).map(str::to_owned);
            Ok(CatalogueEntry {
                name: text("name").ok_or_else(|| {
                    crate::Error::Malformed("a catalogue stream has no name".into())
                })?,
                unit: text("unit"),
                count: int_attr(s, "count")?.max(0) as u64,
                first: text("first"),
                last: text("last"),
                grant: int_attr(s, "grant")?,
                min_aggregation: text("min-aggregation"),
                max_history: text("max-history"),
                meta: s.get_child("meta", NS).map(Meta::parse).unwrap_or_default(),
            })
        })
        .collect()
}

/// Quoalise's `<upstream-error xmlns="urn:quoalise:0" issuer="…" code="…"/>`,
/// for an IQ error of condition `undefined-condition`.
pub fn upstream_error(issuer: &str, code: &str) -> Element {
    element(
        "upstream-error",
        NS,
        &[("issuer", Some(issuer)), ("code", Some(code))],
    )
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_round_trip() {
        let h = PushHeader {
            seq: 42,
            grant: 3,
            retention: Some("P1Y".into()),
        };
        assert_eq!(PushHeader::parse(&h.to_element()).unwrap(), h);
        assert_eq!(parse_revoked(&revoked_element(3, 43)).unwrap(), (3, 43));
        let entries = vec![CatalogueEntry {
            name: "urn:dev:prm:1_consumption".into(),
            unit: Some("W".into()),
            count: 10,
            first: Some("2024-01-01T00:00:00Z".into()),
            grant: 3,
            min_aggregation: Some("PT1H".into()),
            meta: Meta {
                direction: Some("consumption".into()),
                ..Meta::default()
            },
            ..CatalogueEntry::default()
        }];
        assert_eq!(
            parse_catalogue(&catalogue_element(&entries)).unwrap(),
            entries
        );
        let command = Element::builder("command", crate::COMMANDS_NS)
            .append(page_element("2024-01-08T00:00:00Z"))
            .build();
        assert_eq!(
            parse_page(&command).as_deref(),
            Some("2024-01-08T00:00:00Z")
        );
        let e = upstream_error("enedis-data-connect", "ADAM-ERR0123");
        assert_eq!(e.attr("code"), Some("ADAM-ERR0123"));
    }

    #[test]
    fn receipts_travel_as_ranges() {
        let el = received_element(&[9, 3, 4, 5, 6, 7, 12, 4]);
        assert_eq!(el.attr("seqs"), Some("3-7 9 12"));
        assert_eq!(parse_received(&el).unwrap(), vec![3, 4, 5, 6, 7, 9, 12]);
        let read = |seqs: &str| {
            let el: Element = format!(r#"<received xmlns="urn:fedwatt:0" seqs="{seqs}"/>"#)
                .parse()
                .unwrap();
            parse_received(&el).map_err(|e| e.to_string())
        };
        assert_eq!(read("").unwrap(), Vec::<i64>::new());
        assert_eq!(
            read("1-x").unwrap_err(),
            "<received> seqs: \"x\" is not an integer"
        );
        assert_eq!(
            read("7-3").unwrap_err(),
            "<received> seqs: \"7-3\" is a backward range"
        );
        assert_eq!(
            read("1-1000000000000").unwrap_err(),
            "<received> acknowledges more than 4096 pushes"
        );
        assert_eq!(read("1-4096").unwrap().len(), 4096);
        assert!(read("1-4096 5000").is_err());
    }

    #[test]
    fn a_push_header_without_a_number_is_refused() {
        let el: Element = r#"<push xmlns="urn:fedwatt:0" seq="x" grant="1"/>"#
            .parse()
            .unwrap();
        assert_eq!(
            PushHeader::parse(&el).unwrap_err().to_string(),
            "<push> seq=\"x\" is not an integer"
        );
    }
}
