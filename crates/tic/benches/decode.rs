//! Decode rate of TIC groups: 2,000 frames of each mode as a Linky sends
//! them (a standard frame of 30 groups, a historic one of 12), fed whole
//! and in the 64-byte chunks a serial port might give. The throughput is
//! in groups.
//!
//!     cargo bench -p fedwatt-tic --bench decode
//!
//! On a 2-core development machine shared with a CI run: about 10 million
//! standard groups and 14 million historic groups a second, in either
//! chunking (the target was 1 million).

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tic::{Decoder, ETX, Horodate, Mode, STX, write_group};

const FRAMES: usize = 2_000;

fn standard_frames() -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut groups = 0;
    for i in 0..FRAMES {
        let h = Horodate::parse(
            format!(
                "H2401{:02}{:02}{:02}00",
                1 + i / 1440 % 28,
                i / 60 % 24,
                i % 60
            )
            .as_bytes(),
        )
        .expect("a valid horodate");
        let i = i as u64;
        let mut frame: Vec<(&[u8], Option<&Horodate>, String)> = vec![
            (b"ADSC", None, "041876097467".into()),
            (b"VTIC", None, "02".into()),
            (b"DATE", Some(&h), String::new()),
            (b"NGTF", None, "      TEMPO     ".into()),
            (b"LTARF", None, "    HP  BLEU    ".into()),
            (b"EAST", None, format!("{:09}", 12_345_678 + i)),
        ];
        for n in 1..=10 {
            frame.push((
                format!("EASF{n:02}").leak().as_bytes(),
                None,
                format!("{:09}", 1_000 * n + i),
            ));
        }
        for n in 1..=4 {
            frame.push((
                format!("EASD{n:02}").leak().as_bytes(),
                None,
                format!("{:09}", 2_000 * n + i),
            ));
        }
        frame.extend([
            (&b"IRMS1"[..], None, format!("{:03}", 5 + i % 30)),
            (b"URMS1", None, format!("{:03}", 230 + i % 10)),
            (b"PREF", None, "09".into()),
            (b"PCOUP", None, "09".into()),
            (b"SINSTS", None, format!("{:05}", 664 + i % 5000)),
            (b"SMAXSN", Some(&h), "05120".into()),
            (b"CCASN", Some(&h), "01230".into()),
            (b"UMOY1", Some(&h), "232".into()),
            (b"STGE", None, "003A0001".into()),
            (b"PRM", None, "30001610071843".into()),
        ]);
        out.push(STX);
        for (label, h, data) in &frame {
            write_group(&mut out, Mode::Standard, label, *h, data.as_bytes());
        }
        out.push(ETX);
        groups += frame.len() as u64;
    }
    (out, groups)
}

fn historic_frames() -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut groups = 0;
    for i in 0..FRAMES as u64 {
        let frame: [(&[u8], String); 12] = [
            (b"ADCO", "041876097467".into()),
            (b"OPTARIF", "HC..".into()),
            (b"ISOUSC", "45".into()),
            (b"HCHC", format!("{:09}", 52_889_104 + i)),
            (b"HCHP", format!("{:09}", 49_503_427 + i)),
            (b"PTEC", "HP..".into()),
            (b"IINST", format!("{:03}", i % 40)),
            (b"IMAX", "090".into()),
            (b"PAPP", format!("{:05}", 400 + i % 9000)),
            (b"HHPHC", "A".into()),
            (b"MOTDETAT", "000000".into()),
            (b"BASE", format!("{:09}", 1_000 + i)),
        ];
        out.push(STX);
        for (label, data) in &frame {
            write_group(&mut out, Mode::Historic, label, None, data.as_bytes());
        }
        out.push(ETX);
        groups += frame.len() as u64;
    }
    (out, groups)
}

fn decode_all(bytes: &[u8], chunk: usize) -> usize {
    let mut decoder = Decoder::new();
    let mut n = 0;
    for c in bytes.chunks(chunk) {
        decoder.feed(c, |f| n += f.groups.len());
    }
    n
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("tic");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    for (name, (bytes, groups)) in [
        ("standard", standard_frames()),
        ("historic", historic_frames()),
    ] {
        assert_eq!(
            decode_all(&bytes, bytes.len()) as u64,
            groups,
            "{name}: groups lost"
        );
        group.throughput(Throughput::Elements(groups));
        group.bench_function(format!("{name}/whole"), |b| {
            b.iter(|| decode_all(black_box(&bytes), bytes.len()))
        });
        group.bench_function(format!("{name}/64-byte chunks"), |b| {
            b.iter(|| decode_all(black_box(&bytes), 64))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
