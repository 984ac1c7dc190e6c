//! What the SenML fuzz targets and the regression tests check, whatever the input encoding:
//! decoding never panics, the streaming reader agrees with the in-memory
//! one, and whatever resolves re-encodes in every format and resolves to
//! the same records.

#![allow(clippy::expect_used)] // This module exists to panic when an invariant breaks.

use crate::{Format, RecordReader, compact, encode, resolve_reader, resolve_slice, validate};

/// Fixed "now", so that relative times resolve the same on every run.
const NOW: f64 = 1_700_000_000.0;

/// Panics if decoding `data` breaks an invariant.
pub fn check(data: &[u8], format: Format) {
    let in_memory = resolve_slice(data, format, NOW);
    // A reader that hands out a few bytes at a time exercises the refills.
    let streamed = resolve_reader(Trickle(data), format, NOW);
    assert_eq!(in_memory, streamed, "slice and stream decoders disagree");

    // Validation sees an error whenever resolution does.
    let mut errors = 0;
    validate(RecordReader::from_slice(data, format), NOW, |_| errors += 1);
    assert_eq!(
        errors > 0,
        in_memory.is_err(),
        "validate and resolve disagree: {in_memory:?}"
    );

    let Ok(pack) = in_memory else { return };
    for to in Format::ALL {
        let shapes = [Some(pack.to_raw()), compact(&pack).ok()];
        for raw in shapes.into_iter().flatten() {
            let Ok(bytes) = encode(&raw, to) else {
                // Only XML may refuse (characters XML 1.0 cannot carry).
                assert_eq!(to, Format::Xml, "{to} refused a resolved pack");
                continue;
            };
            let again = resolve_slice(&bytes, to, 0.0).expect("re-encoded pack does not decode");
            assert_eq!(again.records.len(), pack.records.len());
            for (a, b) in again.records.iter().zip(&pack.records) {
                assert_eq!(
                    (&a.name, &a.value, a.sum(), &a.unit, a.update_time()),
                    (&b.name, &b.value, b.sum(), &b.unit, b.update_time())
                );
                // Exact to the microsecond until 2^32 s (year 2106); beyond,
                // f64 seconds cannot hold every microsecond.
                let slack = if b.time.abs() < (1i64 << 32) * 1_000_000 {
                    0
                } else {
                    b.time.abs() >> 50
                };
                assert!(
                    (a.time - b.time).abs() <= slack,
                    "time {} came back as {}",
                    b.time,
                    a.time
                );
            }
        }
    }
}

struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.len().min(buf.len()).min(7);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}
