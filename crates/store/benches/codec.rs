//! Encode and decode rates of the chunk codec, on a year of one stream of
//! `bench/store.py`'s household-like load (a chunk a day of 144 points) and
//! on a year of a 30-minute Linky load curve (48 points a day); the
//! throughput is in points. Prints the bytes a point takes, each way of
//! encoding numbers, first.
//!
//!     cargo bench -p fedwatt-store --bench codec

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use store::codec::{
    NumberEncoding, Point, decode_points, encode_legacy_points, encode_points, encode_points_with,
    loads,
};

fn year(day: impl Fn(i64) -> Vec<Point>) -> Vec<Vec<Point>> {
    (0..365).map(day).collect()
}

fn bench(c: &mut Criterion) {
    let loads = [
        ("household", year(|d| loads::household_day(3, d))),
        ("linky", year(loads::linky_day)),
    ];
    for (name, days) in &loads {
        let points: usize = days.iter().map(Vec::len).sum();
        let size = |f: &dyn Fn(&[Point]) -> Vec<u8>| {
            days.iter().map(|d| f(d).len()).sum::<usize>() as f64 / points as f64
        };
        println!(
            "{name}: bytes a point: legacy {:.2}, XOR floats {:.2}, scaled integers {:.2}, stored {:.2}",
            size(&encode_legacy_points),
            size(&|d| encode_points_with(d, NumberEncoding::Xor)),
            size(&|d| encode_points_with(d, NumberEncoding::Scaled)),
            size(&encode_points),
        );
        let encoded: Vec<Vec<u8>> = days.iter().map(|d| encode_points(d)).collect();
        let mut group = c.benchmark_group(*name);
        group.throughput(Throughput::Elements(points as u64));
        group.bench_function("encode", |b| {
            b.iter(|| {
                for d in days {
                    black_box(encode_points(black_box(d)));
                }
            })
        });
        group.bench_function("decode", |b| {
            b.iter(|| {
                let mut sum = 0.0;
                for data in &encoded {
                    decode_points(black_box(data), |p| sum += p.value.unwrap_or(0.0))
                        .expect("a chunk just encoded");
                }
                black_box(sum)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
