#![no_main]
//! The store's chunk and hours decoders on any bytes: each answers points
//! or an error, never a panic; points it answers encode and decode back to
//! themselves, bit for bit.

use store::codec::{Point, decode_hours, decode_points, encode_points};

fn key(points: &[Point]) -> Vec<(i64, Option<u64>, Option<Vec<u8>>, Option<u64>, Option<u64>)> {
    points
        .iter()
        .map(|p| {
            (
                p.time,
                p.value.map(f64::to_bits),
                p.payload.as_deref().map(<[u8]>::to_vec),
                p.sum.map(f64::to_bits),
                p.update_time.map(f64::to_bits),
            )
        })
        .collect()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = decode_hours(0, data, |_, _| {});
    let mut points = Vec::new();
    if decode_points(data, |p| points.push(p)).is_err() {
        return;
    }
    // A version 1 chunk is not checked for order; the store writes only
    // ordered ones.
    if points.windows(2).any(|w| w[0].time >= w[1].time) {
        return;
    }
    let mut back = Vec::new();
    decode_points(&encode_points(&points), |p| back.push(p)).expect("a chunk just encoded");
    assert_eq!(key(&back), key(&points));
});
