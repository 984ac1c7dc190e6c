//! The encodings of chunks and hours rows: pure functions from points (or
//! hourly partials) to bytes and back. Every value round-trips bit for bit
//! (NaN included, though the store never holds one); the decoders read any
//! bytes without panicking and answer [`Corrupt`] for what they cannot read.
//!
//! Chunk, version 2: the byte 2, the number of points `n` (varint), a byte
//! of four 2-bit column modes (value, payload, sum, update time; 0 none of
//! the points has it, 1 all have, 2 some: a bitmap of `n` bits follows, one
//! per column in that order), then the columns:
//!
//! - times (µs): the first, the first delta (zigzag varints), then the
//!   deltas of deltas as runs: a count of zeros, then a nonzero one, and so
//!   on (a regular series costs a few bytes per chunk, not per point);
//! - numbers (value, sum, update time): a kind byte, then either *scaled
//!   integers* (kind 0: a byte of decimals `d`, then `round(v × 10^d)` as a
//!   first value and deltas, zigzag varints), when every number is exactly
//!   `m / 10^d` for some integer `m` of at most 53 bits, or *XOR floats*
//!   (kind 1: Gorilla's bit stream of each number XOR the one before,
//!   prefixed by its length in bytes), or *near-scaled integers* (kind 2:
//!   as kind 0, each followed by the XOR of the number's bits with those of
//!   `m / 10^d`, a varint: a byte for the sum of numbers with few decimals,
//!   exact but for a rounding error), whichever is shortest;
//! - payloads (strings, data): a mode byte, then each payload as a varint
//!   length and its bytes (mode 0), or a dictionary of the distinct ones
//!   followed by an index per point (mode 1) when they repeat.
//!
//! Hours row, version 2: the byte 2, a bitmap of the 24 hours of the day
//! that have a partial (3 bytes), then the columns of those partials:
//! counts (integers as times are), sums, mins, maxes (numbers as above):
//! all a profile reads; then first and last times as offsets from their
//! hour (integers), first and last values (numbers).
//!
//! Version 1 (one flags byte and fixed-width fields per point; 61 bytes per
//! hour) is still read, for the stores the migration to version 2 upgrades.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::rollup::Partial;

/// µs in an hour.
const HOUR: i64 = 3_600_000_000;

/// The version byte of chunks and hours rows this module writes.
pub const VERSION: u8 = 2;

/// The first layout, still read.
const LEGACY: u8 = 1;

/// Most points a chunk may declare: a bound on what a decoder builds from a
/// few bytes (a regular series of points without values takes almost none).
pub const MAX_POINTS: u64 = 1 << 24;

/// A stored point.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// µs since the epoch.
    pub time: i64,
    /// Number, or boolean as 0/1.
    pub value: Option<f64>,
    /// String (UTF-8) or data bytes.
    pub payload: Option<Arc<[u8]>>,
    /// SenML sum.
    pub sum: Option<f64>,
    /// SenML update time.
    pub update_time: Option<f64>,
}

/// Bytes that are not a chunk or hours row of a known version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub String);

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Corrupt {}

fn corrupt<T>(what: impl Into<String>) -> Result<T, Corrupt> {
    Err(Corrupt(what.into()))
}

// Bytes.

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    (u >> 1) as i64 ^ -((u & 1) as i64)
}

fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

/// Reads a blob front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        if self.0.len() < n {
            return corrupt("the blob ends early");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], Corrupt> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| Corrupt("the blob ends early".into()))?;
        self.0 = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, Corrupt> {
        Ok(self.take::<1>()?[0])
    }

    fn uvarint(&mut self) -> Result<u64, Corrupt> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return corrupt("a number is longer than 64 bits");
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        corrupt("a number is longer than 64 bits")
    }

    fn ivarint(&mut self) -> Result<i64, Corrupt> {
        Ok(unzigzag(self.uvarint()?))
    }

    /// A length of bytes to follow, at most what is left.
    fn len(&mut self) -> Result<usize, Corrupt> {
        let n = self.uvarint()?;
        if n > self.0.len() as u64 {
            return corrupt("a length runs past the end of the blob");
        }
        Ok(n as usize)
    }
}

// Bits, for XOR floats.

struct BitWriter {
    out: Vec<u8>,
    current: u8,
    used: u32,
}

impl BitWriter {
    fn new() -> BitWriter {
        BitWriter {
            out: Vec::new(),
            current: 0,
            used: 0,
        }
    }

    /// Writes the low `n` bits of `value` (n ≤ 64), most significant first.
    fn write(&mut self, value: u64, mut n: u32) {
        while n > 0 {
            let free = 8 - self.used;
            let take = free.min(n);
            let bits = (value >> (n - take)) as u8 & ((1u16 << take) - 1) as u8;
            self.current |= bits << (free - take);
            self.used += take;
            n -= take;
            if self.used == 8 {
                self.out.push(self.current);
                self.current = 0;
                self.used = 0;
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.out.push(self.current);
        }
        self.out
    }
}

struct BitReader<'a> {
    data: &'a [u8],
    /// Bits read so far.
    at: usize,
}

impl BitReader<'_> {
    fn read(&mut self, mut n: u32) -> Result<u64, Corrupt> {
        if self.at + n as usize > self.data.len() * 8 {
            return corrupt("the floats end early");
        }
        let mut v = 0u64;
        while n > 0 {
            let byte = self.data[self.at / 8];
            let offset = (self.at % 8) as u32;
            let take = (8 - offset).min(n);
            let bits = (byte >> (8 - offset - take)) & ((1u16 << take) - 1) as u8;
            v = v << take | u64::from(bits);
            self.at += take as usize;
            n -= take;
        }
        Ok(v)
    }
}

/// Where a column's decoded values go: a vector, or a fixed array for the
/// at most 24 of an hours row.
trait Sink<T> {
    fn push(&mut self, v: T);
}

impl<T> Sink<T> for Vec<T> {
    fn push(&mut self, v: T) {
        Vec::push(self, v);
    }
}

/// At most 24 values, on the stack.
struct Day<T> {
    items: [T; 24],
    len: usize,
}

impl<T: Copy + Default> Day<T> {
    fn new() -> Day<T> {
        Day {
            items: [T::default(); 24],
            len: 0,
        }
    }
}

impl<T> Sink<T> for Day<T> {
    fn push(&mut self, v: T) {
        // The callers read at most 24 values (the hours of a day's bitmap).
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = v;
            self.len += 1;
        }
    }
}

// Integer columns: first, first delta, then runs of deltas of deltas.

fn put_ints(out: &mut Vec<u8>, values: impl IntoIterator<Item = i64>) {
    let mut values = values.into_iter();
    let Some(first) = values.next() else { return };
    put_ivarint(out, first);
    let Some(second) = values.next() else { return };
    let mut delta = second.wrapping_sub(first);
    put_ivarint(out, delta);
    let (mut prev, mut zeros) = (second, 0u64);
    for v in values {
        let d = v.wrapping_sub(prev);
        let dod = d.wrapping_sub(delta);
        if dod == 0 {
            zeros += 1;
        } else {
            put_uvarint(out, zeros);
            put_ivarint(out, dod);
            zeros = 0;
        }
        (prev, delta) = (v, d);
    }
    if zeros > 0 {
        put_uvarint(out, zeros);
    }
}

/// Reads `n` integers written by [`put_ints`] into `into`.
fn read_ints(r: &mut Reader<'_>, n: usize, into: &mut impl Sink<i64>) -> Result<(), Corrupt> {
    if n == 0 {
        return Ok(());
    }
    let mut v = r.ivarint()?;
    into.push(v);
    if n == 1 {
        return Ok(());
    }
    let mut delta = r.ivarint()?;
    v = v.wrapping_add(delta);
    into.push(v);
    let mut left = n - 2;
    while left > 0 {
        let zeros = r.uvarint()?;
        if zeros > left as u64 {
            return corrupt("a run of regular steps runs past the last point");
        }
        for _ in 0..zeros {
            v = v.wrapping_add(delta);
            into.push(v);
        }
        left -= zeros as usize;
        if left == 0 {
            break;
        }
        delta = delta.wrapping_add(r.ivarint()?);
        v = v.wrapping_add(delta);
        into.push(v);
        left -= 1;
    }
    Ok(())
}

// Number columns.

const SCALED: u8 = 0;
const XOR: u8 = 1;
const NEAR_SCALED: u8 = 2;

/// Most decimals a scaled column keeps.
const MAX_DECIMALS: usize = 15;

const POW10: [f64; MAX_DECIMALS + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Most decimals tried for numbers only nearly scaled integers.
const NEAR_DECIMALS: usize = 3;

/// Largest integer every smaller one of which an f64 holds exactly.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// `v` as `m / 10^d`, if exactly so.
fn scaled(v: f64, d: usize) -> Option<i64> {
    let m = (v * POW10[d]).round();
    if m.is_nan() || m.abs() > EXACT {
        return None;
    }
    let m = m as i64;
    ((m as f64 / POW10[d]).to_bits() == v.to_bits()).then_some(m)
}

/// The fewest decimals that every number of `values` is exact with.
fn decimals_of(values: &[f64]) -> Option<usize> {
    let mut d = 0;
    for &v in values {
        while scaled(v, d).is_none() {
            d += 1;
            if d > MAX_DECIMALS {
                return None;
            }
        }
    }
    Some(d)
}

/// The scaled-integer encoding of `values`, if they all have few decimals.
fn scaled_column(values: &[f64]) -> Option<Vec<u8>> {
    let d = decimals_of(values)?;
    let mut out = Vec::with_capacity(2 + values.len() * 2);
    out.push(SCALED);
    out.push(d as u8);
    let mut prev = 0i64;
    for &v in values {
        let m = scaled(v, d)?;
        put_ivarint(&mut out, m.wrapping_sub(prev));
        prev = m;
    }
    Some(out)
}

/// The encoding of `values` as scaled integers at `d` decimals and, for
/// each, the XOR of its bits with those of `m / 10^d`: a few bits for the
/// sum of numbers with few decimals, which is one only to a rounding error.
fn near_scaled_column(values: &[f64], d: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(2 + values.len() * 3);
    out.push(NEAR_SCALED);
    out.push(d as u8);
    let mut prev = 0i64;
    for &v in values {
        let m = (v * POW10[d]).round();
        if m.is_nan() || m.abs() > EXACT {
            return None;
        }
        let m = m as i64;
        put_ivarint(&mut out, m.wrapping_sub(prev));
        put_uvarint(&mut out, v.to_bits() ^ (m as f64 / POW10[d]).to_bits());
        prev = m;
    }
    Some(out)
}

/// The XOR (Gorilla) encoding of `values`.
fn xor_column(values: &[f64]) -> Vec<u8> {
    let mut bits = BitWriter::new();
    let mut prev = 0u64;
    // The window of meaningful bits of the last XOR: leading, trailing zeros.
    let mut window: Option<(u32, u32)> = None;
    for (i, v) in values.iter().enumerate() {
        let v = v.to_bits();
        if i == 0 {
            bits.write(v, 64);
            prev = v;
            continue;
        }
        let x = v ^ prev;
        prev = v;
        if x == 0 {
            bits.write(0, 1);
            continue;
        }
        let (lead, trail) = (x.leading_zeros().min(31), x.trailing_zeros());
        match window {
            Some((l, t)) if lead >= l && trail >= t => {
                bits.write(0b10, 2);
                bits.write(x >> t, 64 - l - t);
            }
            _ => {
                let len = 64 - lead - trail;
                bits.write(0b11, 2);
                bits.write(u64::from(lead), 5);
                bits.write(u64::from(len - 1), 6);
                bits.write(x >> trail, len);
                window = Some((lead, trail));
            }
        }
    }
    let bits = bits.finish();
    let mut out = Vec::with_capacity(bits.len() + 4);
    out.push(XOR);
    put_uvarint(&mut out, bits.len() as u64);
    out.extend_from_slice(&bits);
    out
}

/// Which encoding a column of numbers takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberEncoding {
    /// Scaled integers where exact, else XOR floats, whichever is shorter
    /// (what the store writes).
    Best,
    /// XOR floats always.
    Xor,
    /// Scaled integers where exact, else XOR floats.
    Scaled,
}

fn put_numbers(out: &mut Vec<u8>, values: &[f64], how: NumberEncoding) {
    let column = match how {
        NumberEncoding::Xor => xor_column(values),
        NumberEncoding::Scaled => scaled_column(values).unwrap_or_else(|| xor_column(values)),
        NumberEncoding::Best => {
            let scaled = match scaled_column(values) {
                // More than a byte a number: XOR floats take more (they
                // take less only for numbers that mostly repeat, whose
                // deltas are a byte each).
                Some(exact) if exact.len() > values.len() + 2 => {
                    out.extend_from_slice(&exact);
                    return;
                }
                Some(exact) => Some(exact),
                // Not exact with few decimals: nearly so, perhaps.
                None => (0..=NEAR_DECIMALS)
                    .filter_map(|d| near_scaled_column(values, d))
                    .min_by_key(Vec::len),
            };
            let xor = xor_column(values);
            match scaled {
                Some(s) if s.len() <= xor.len() => s,
                _ => xor,
            }
        }
    };
    out.extend_from_slice(&column);
}

/// Reads `n` numbers written by [`put_numbers`] into `into`.
fn read_numbers(r: &mut Reader<'_>, n: usize, into: &mut impl Sink<f64>) -> Result<(), Corrupt> {
    match r.u8()? {
        SCALED => {
            let d = r.u8()? as usize;
            if d > MAX_DECIMALS {
                return corrupt(format!("{d} decimals, more than a column keeps"));
            }
            let mut m = 0i64;
            for _ in 0..n {
                m = m.wrapping_add(r.ivarint()?);
                into.push(m as f64 / POW10[d]);
            }
        }
        NEAR_SCALED => {
            let d = r.u8()? as usize;
            if d > MAX_DECIMALS {
                return corrupt(format!("{d} decimals, more than a column keeps"));
            }
            let mut m = 0i64;
            for _ in 0..n {
                m = m.wrapping_add(r.ivarint()?);
                let residual = r.uvarint()?;
                into.push(f64::from_bits((m as f64 / POW10[d]).to_bits() ^ residual));
            }
        }
        XOR => {
            let len = r.len()?;
            let mut bits = BitReader {
                data: r.bytes(len)?,
                at: 0,
            };
            let mut window: Option<(u32, u32)> = None;
            let mut prev = 0u64;
            for i in 0..n {
                if i == 0 {
                    prev = bits.read(64)?;
                } else if bits.read(1)? == 1 {
                    if bits.read(1)? == 1 {
                        let lead = bits.read(5)? as u32;
                        let len = bits.read(6)? as u32 + 1;
                        if lead + len > 64 {
                            return corrupt("a float's bits overflow 64");
                        }
                        window = Some((lead, 64 - lead - len));
                    }
                    let Some((l, t)) = window else {
                        return corrupt("a float reuses a window never set");
                    };
                    prev ^= bits.read(64 - l - t)? << t;
                }
                into.push(f64::from_bits(prev));
            }
        }
        kind => return corrupt(format!("unknown number encoding {kind}")),
    }
    Ok(())
}

// Payload columns.

const PLAIN: u8 = 0;
const DICTIONARY: u8 = 1;

fn put_payloads(out: &mut Vec<u8>, payloads: &[&[u8]]) {
    let mut index: HashMap<&[u8], u64> = HashMap::new();
    let mut distinct: Vec<&[u8]> = Vec::new();
    let ids: Vec<u64> = payloads
        .iter()
        .map(|p| {
            *index.entry(p).or_insert_with(|| {
                distinct.push(p);
                distinct.len() as u64 - 1
            })
        })
        .collect();
    let put = |out: &mut Vec<u8>, p: &[u8]| {
        put_uvarint(out, p.len() as u64);
        out.extend_from_slice(p);
    };
    if distinct.len() * 2 <= payloads.len() {
        out.push(DICTIONARY);
        put_uvarint(out, distinct.len() as u64);
        for p in &distinct {
            put(out, p);
        }
        for id in ids {
            put_uvarint(out, id);
        }
    } else {
        out.push(PLAIN);
        for p in payloads {
            put(out, p);
        }
    }
}

fn read_payloads(r: &mut Reader<'_>, n: usize, into: &mut Vec<Arc<[u8]>>) -> Result<(), Corrupt> {
    match r.u8()? {
        PLAIN => {
            for _ in 0..n {
                let len = r.len()?;
                into.push(Arc::from(r.bytes(len)?));
            }
        }
        DICTIONARY => {
            // Each entry takes at least a byte: the count is bounded by the blob.
            let entries = r.len()?;
            let mut distinct = Vec::with_capacity(entries);
            for _ in 0..entries {
                let len = r.len()?;
                distinct.push(Arc::<[u8]>::from(r.bytes(len)?));
            }
            for _ in 0..n {
                let id = r.uvarint()?;
                let p = usize::try_from(id)
                    .ok()
                    .and_then(|id| distinct.get(id))
                    .ok_or_else(|| Corrupt(format!("payload {id} of {entries} in the chunk")))?;
                into.push(p.clone());
            }
        }
        mode => return corrupt(format!("unknown payload encoding {mode}")),
    }
    Ok(())
}

// Chunks.

/// Which points of a chunk have a field: none, all, or some (a bitmap).
#[derive(Debug, Clone, PartialEq)]
enum Presence {
    None,
    All,
    Some(Vec<u8>),
}

impl Presence {
    fn of(n: usize, has: impl Iterator<Item = bool>) -> Presence {
        let mut bitmap = vec![0u8; n.div_ceil(8)];
        let mut count = 0;
        for (i, h) in has.enumerate() {
            if h {
                bitmap[i / 8] |= 1 << (i % 8);
                count += 1;
            }
        }
        match count {
            0 => Presence::None,
            c if c == n => Presence::All,
            _ => Presence::Some(bitmap),
        }
    }

    fn mode(&self) -> u8 {
        match self {
            Presence::None => 0,
            Presence::All => 1,
            Presence::Some(_) => 2,
        }
    }

    fn has(&self, i: usize) -> bool {
        match self {
            Presence::None => false,
            Presence::All => true,
            Presence::Some(bitmap) => bitmap[i / 8] & (1 << (i % 8)) != 0,
        }
    }

    fn count(&self, n: usize) -> usize {
        match self {
            Presence::None => 0,
            Presence::All => n,
            Presence::Some(bitmap) => bitmap.iter().map(|b| b.count_ones() as usize).sum(),
        }
    }
}

/// Encodes points sorted by time, one per time (what the store writes).
pub fn encode_points(points: &[Point]) -> Vec<u8> {
    encode_points_with(points, NumberEncoding::Best)
}

/// Encodes points sorted by time, numbers as `how` says.
pub fn encode_points_with(points: &[Point], how: NumberEncoding) -> Vec<u8> {
    let n = points.len();
    let mut out = Vec::with_capacity(16 + n * 3);
    out.push(VERSION);
    put_uvarint(&mut out, n as u64);
    let columns = [
        Presence::of(n, points.iter().map(|p| p.value.is_some())),
        Presence::of(n, points.iter().map(|p| p.payload.is_some())),
        Presence::of(n, points.iter().map(|p| p.sum.is_some())),
        Presence::of(n, points.iter().map(|p| p.update_time.is_some())),
    ];
    out.push(
        columns
            .iter()
            .enumerate()
            .fold(0, |modes, (i, c)| modes | c.mode() << (2 * i)),
    );
    for c in &columns {
        if let Presence::Some(bitmap) = c {
            out.extend_from_slice(bitmap);
        }
    }
    put_ints(&mut out, points.iter().map(|p| p.time));
    let numbers = |field: fn(&Point) -> Option<f64>| -> Vec<f64> {
        points.iter().filter_map(field).collect()
    };
    if columns[0] != Presence::None {
        put_numbers(&mut out, &numbers(|p| p.value), how);
    }
    if columns[1] != Presence::None {
        let payloads: Vec<&[u8]> = points.iter().filter_map(|p| p.payload.as_deref()).collect();
        put_payloads(&mut out, &payloads);
    }
    if columns[2] != Presence::None {
        put_numbers(&mut out, &numbers(|p| p.sum), how);
    }
    if columns[3] != Presence::None {
        put_numbers(&mut out, &numbers(|p| p.update_time), how);
    }
    out
}

/// Decodes a chunk of either version, calling `visit` for each point in
/// time order.
pub fn decode_points(data: &[u8], mut visit: impl FnMut(Point)) -> Result<(), Corrupt> {
    let mut r = Reader(data);
    match r.u8()? {
        VERSION => {}
        LEGACY => return decode_legacy_points(r, visit),
        v => return corrupt(format!("unknown chunk version {v}")),
    }
    let n = r.uvarint()?;
    if n > MAX_POINTS {
        return corrupt(format!("{n} points, more than a chunk holds"));
    }
    let n = n as usize;
    let modes = r.u8()?;
    let mut columns = [
        Presence::None,
        Presence::None,
        Presence::None,
        Presence::None,
    ];
    for (i, c) in columns.iter_mut().enumerate() {
        *c = match (modes >> (2 * i)) & 3 {
            0 => Presence::None,
            1 => Presence::All,
            2 => Presence::Some(r.bytes(n.div_ceil(8))?.to_vec()),
            _ => return corrupt("unknown column mode 3"),
        };
    }
    let mut times = Vec::with_capacity(n.min(1024));
    read_ints(&mut r, n, &mut times)?;
    if times.windows(2).any(|w| w[0] >= w[1]) {
        return corrupt("the points are not in strictly increasing time order");
    }
    let numbers = |c: &Presence, r: &mut Reader<'_>| -> Result<Vec<f64>, Corrupt> {
        let mut v = Vec::new();
        if *c != Presence::None {
            read_numbers(r, c.count(n), &mut v)?;
        }
        Ok(v)
    };
    let values = numbers(&columns[0], &mut r)?;
    let mut payloads = Vec::new();
    if columns[1] != Presence::None {
        read_payloads(&mut r, columns[1].count(n), &mut payloads)?;
    }
    let sums = numbers(&columns[2], &mut r)?;
    let update_times = numbers(&columns[3], &mut r)?;
    if !r.0.is_empty() {
        return corrupt(format!("{} bytes after the last column", r.0.len()));
    }
    let (mut values, mut payloads, mut sums, mut update_times) = (
        values.into_iter(),
        payloads.into_iter(),
        sums.into_iter(),
        update_times.into_iter(),
    );
    for (i, time) in times.into_iter().enumerate() {
        visit(Point {
            time,
            value: columns[0].has(i).then(|| values.next()).flatten(),
            payload: columns[1].has(i).then(|| payloads.next()).flatten(),
            sum: columns[2].has(i).then(|| sums.next()).flatten(),
            update_time: columns[3].has(i).then(|| update_times.next()).flatten(),
        });
    }
    Ok(())
}

/// The fields a version 1 point's flags name.
const VALUE: u8 = 1;
const PAYLOAD: u8 = 2;
const SUM: u8 = 4;
const UPDATE_TIME: u8 = 8;

fn f64_at(r: &mut Reader<'_>) -> Result<f64, Corrupt> {
    Ok(f64::from_le_bytes(r.take()?))
}

/// Version 1: for each point, flags, time (i64 LE), then the fields the
/// flags name: value f64, payload (u32 LE length and bytes), sum f64,
/// update time f64.
fn decode_legacy_points(mut r: Reader<'_>, mut visit: impl FnMut(Point)) -> Result<(), Corrupt> {
    while !r.0.is_empty() {
        let flags = r.u8()?;
        let time = i64::from_le_bytes(r.take()?);
        let value = (flags & VALUE != 0).then(|| f64_at(&mut r)).transpose()?;
        let payload = if flags & PAYLOAD != 0 {
            let len = u32::from_le_bytes(r.take()?) as usize;
            Some(Arc::from(r.bytes(len)?))
        } else {
            None
        };
        let sum = (flags & SUM != 0).then(|| f64_at(&mut r)).transpose()?;
        let update_time = (flags & UPDATE_TIME != 0)
            .then(|| f64_at(&mut r))
            .transpose()?;
        visit(Point {
            time,
            value,
            payload,
            sum,
            update_time,
        });
    }
    Ok(())
}

/// Encodes points in the version 1 layout (for the tests of the upgrade).
pub fn encode_legacy_points(points: &[Point]) -> Vec<u8> {
    let mut out = vec![LEGACY];
    for p in points {
        let flags = [
            (p.value.is_some(), VALUE),
            (p.payload.is_some(), PAYLOAD),
            (p.sum.is_some(), SUM),
            (p.update_time.is_some(), UPDATE_TIME),
        ]
        .iter()
        .filter(|(present, _)| *present)
        .fold(0, |flags, (_, flag)| flags | flag);
        out.push(flags);
        out.extend_from_slice(&p.time.to_le_bytes());
        if let Some(v) = p.value {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(payload) = &p.payload {
            out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            out.extend_from_slice(payload);
        }
        for v in [p.sum, p.update_time].into_iter().flatten() {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Whether a chunk or hours row is in the version this module writes.
pub fn is_current(data: &[u8]) -> bool {
    data.first() == Some(&VERSION)
}

// Hours.

/// Encodes the hourly partials of the UTC day starting at `day`: at most
/// one per hour of that day, in time order (as `chunk::hours_of` makes
/// them).
pub fn encode_hours(day: i64, hours: &[(i64, Partial)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + hours.len() * 16);
    out.push(VERSION);
    let mut bitmap = 0u32;
    for (hour, _) in hours {
        let index = (hour - day) / HOUR;
        debug_assert!((0..24).contains(&index) && (hour - day) % HOUR == 0);
        bitmap |= 1 << index.clamp(0, 23);
    }
    out.extend_from_slice(&bitmap.to_le_bytes()[..3]);
    // What a profile reads first, so that it stops there.
    put_ints(&mut out, hours.iter().map(|(_, p)| p.count as i64));
    let numbers = |out: &mut Vec<u8>, field: fn(&Partial) -> f64| {
        let values: Vec<f64> = hours.iter().map(|(_, p)| field(p)).collect();
        put_numbers(out, &values, NumberEncoding::Best);
    };
    numbers(&mut out, |p| p.sum);
    numbers(&mut out, |p| p.min);
    numbers(&mut out, |p| p.max);
    put_ints(
        &mut out,
        hours.iter().map(|(h, p)| p.first.0.wrapping_sub(*h)),
    );
    put_ints(
        &mut out,
        hours.iter().map(|(h, p)| p.last.0.wrapping_sub(*h)),
    );
    numbers(&mut out, |p| p.first.1);
    numbers(&mut out, |p| p.last.1);
    out
}

/// The count, sum, min and max of an hour: what a profile folds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourSlot {
    /// Number of points.
    pub count: u64,
    /// Sum of their values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// The hours of a version 2 row, and their first columns read.
struct HoursHead {
    bitmap: u32,
    n: usize,
    counts: Day<i64>,
    sums: Day<f64>,
    mins: Day<f64>,
    maxes: Day<f64>,
}

fn hours_head(r: &mut Reader<'_>) -> Result<HoursHead, Corrupt> {
    let [a, b, c] = r.take::<3>()?;
    let bitmap = u32::from_le_bytes([a, b, c, 0]);
    let n = bitmap.count_ones() as usize;
    let mut head = HoursHead {
        bitmap,
        n,
        counts: Day::new(),
        sums: Day::new(),
        mins: Day::new(),
        maxes: Day::new(),
    };
    read_ints(r, n, &mut head.counts)?;
    read_numbers(r, n, &mut head.sums)?;
    read_numbers(r, n, &mut head.mins)?;
    read_numbers(r, n, &mut head.maxes)?;
    Ok(head)
}

impl HoursHead {
    /// The hours present, as offsets from the day in hours.
    fn hours(&self) -> impl Iterator<Item = i64> + use<> {
        let bitmap = self.bitmap;
        (0..24i64).filter(move |h| bitmap & (1 << h) != 0)
    }

    fn slot(&self, i: usize) -> HourSlot {
        HourSlot {
            count: self.counts.items[i] as u64,
            sum: self.sums.items[i],
            min: self.mins.items[i],
            max: self.maxes.items[i],
        }
    }
}

/// Decodes the count, sum, min and max of each hour of a day's row, either
/// version, without the rest where the version lets it.
pub fn decode_hour_slots(
    day: i64,
    data: &[u8],
    mut visit: impl FnMut(i64, HourSlot),
) -> Result<(), Corrupt> {
    let mut r = Reader(data);
    match r.u8()? {
        VERSION => {}
        LEGACY => {
            return decode_legacy_hours(day, r, |hour, p| {
                visit(
                    hour,
                    HourSlot {
                        count: p.count,
                        sum: p.sum,
                        min: p.min,
                        max: p.max,
                    },
                )
            });
        }
        v => return corrupt(format!("unknown hours version {v}")),
    }
    let head = hours_head(&mut r)?;
    for (i, h) in head.hours().enumerate() {
        visit(day.wrapping_add(h * HOUR), head.slot(i));
    }
    Ok(())
}

/// Decodes the hourly partials of the UTC day starting at `day`, either
/// version.
pub fn decode_hours(
    day: i64,
    data: &[u8],
    mut visit: impl FnMut(i64, Partial),
) -> Result<(), Corrupt> {
    let mut r = Reader(data);
    match r.u8()? {
        VERSION => {}
        LEGACY => return decode_legacy_hours(day, r, visit),
        v => return corrupt(format!("unknown hours version {v}")),
    }
    let head = hours_head(&mut r)?;
    let n = head.n;
    let (mut firsts, mut lasts) = (Day::new(), Day::new());
    let (mut first_values, mut last_values) = (Day::new(), Day::new());
    read_ints(&mut r, n, &mut firsts)?;
    read_ints(&mut r, n, &mut lasts)?;
    read_numbers(&mut r, n, &mut first_values)?;
    read_numbers(&mut r, n, &mut last_values)?;
    if !r.0.is_empty() {
        return corrupt(format!("{} bytes after the last column", r.0.len()));
    }
    for (i, h) in head.hours().enumerate() {
        let hour = day.wrapping_add(h * HOUR);
        let slot = head.slot(i);
        visit(
            hour,
            Partial {
                count: slot.count,
                sum: slot.sum,
                min: slot.min,
                max: slot.max,
                first: (hour.wrapping_add(firsts.items[i]), first_values.items[i]),
                last: (hour.wrapping_add(lasts.items[i]), last_values.items[i]),
            },
        );
    }
    Ok(())
}

/// Version 1: for each hour with points: the hour of the day (u8), count
/// (u32), sum, min, max (f64), first time (i64), first value (f64), last
/// time (i64), last value (f64); all LE.
fn decode_legacy_hours(
    day: i64,
    mut r: Reader<'_>,
    mut visit: impl FnMut(i64, Partial),
) -> Result<(), Corrupt> {
    while !r.0.is_empty() {
        let hour = day.wrapping_add(i64::from(r.u8()?) * HOUR);
        let count = u64::from(u32::from_le_bytes(r.take()?));
        let (sum, min, max) = (f64_at(&mut r)?, f64_at(&mut r)?, f64_at(&mut r)?);
        let first = (i64::from_le_bytes(r.take()?), f64_at(&mut r)?);
        let last = (i64::from_le_bytes(r.take()?), f64_at(&mut r)?);
        visit(
            hour,
            Partial {
                count,
                sum,
                min,
                max,
                first,
                last,
            },
        );
    }
    Ok(())
}

/// Encodes hourly partials in the version 1 layout (for the tests of the
/// upgrade).
pub fn encode_legacy_hours(day: i64, hours: &[(i64, Partial)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + hours.len() * 61);
    out.push(LEGACY);
    for (hour, p) in hours {
        out.push(((hour - day) / HOUR) as u8);
        out.extend_from_slice(&(p.count.min(u64::from(u32::MAX)) as u32).to_le_bytes());
        for v in [p.sum, p.min, p.max] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&p.first.0.to_le_bytes());
        out.extend_from_slice(&p.first.1.to_le_bytes());
        out.extend_from_slice(&p.last.0.to_le_bytes());
        out.extend_from_slice(&p.last.1.to_le_bytes());
    }
    out
}

/// Loads the codec is measured on (tests and the `codec` bench).
pub mod loads {
    use super::Point;

    /// µs in a second.
    const S: i64 = 1_000_000;

    fn number(time: i64, value: f64) -> Point {
        Point {
            time,
            value: Some(value),
            payload: None,
            sum: None,
            update_time: None,
        }
    }

    /// A day of `bench/store.py`'s household-like load of `stream`: 144
    /// points 10 minutes apart, in W with one decimal.
    pub fn household_day(stream: i64, day: i64) -> Vec<Point> {
        let start = 1_704_067_200 + day * 86_400;
        (0..144)
            .map(|i| {
                let t = start + i * 600;
                let hour = (t % 86_400) as f64 / 3600.0;
                let base = 300.0 + 40.0 * (stream % 17) as f64;
                let evening = if (18.0..22.0).contains(&hour) {
                    0.9
                } else {
                    0.0
                };
                let shape =
                    1.0 + 0.8 * ((hour - 7.0) / 24.0 * 2.0 * std::f64::consts::PI).sin() + evening;
                let noise = ((t / 600 * 2_654_435_761 + stream * 40_503) % 1000) as f64 / 1000.0;
                let v = ((base * shape + 100.0 * noise) * 10.0).round() / 10.0;
                number(t * S, v)
            })
            .collect()
    }

    /// A day of a Linky load curve: 48 mean powers of 30 minutes, whole W,
    /// as the meter's `PAPP`-style curve gives them.
    pub fn linky_day(day: i64) -> Vec<Point> {
        let start = 1_704_067_200 + day * 86_400;
        let mut state = 0x9e37_79b9_u64.wrapping_mul(day as u64 + 1);
        (0..48)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let half_hour = i as f64 / 2.0;
                let base = if (7.0..9.0).contains(&half_hour) || (18.0..23.0).contains(&half_hour) {
                    1800.0
                } else {
                    450.0
                };
                let v = (base + (state >> 33) as f64 % 700.0).round();
                number((start + i * 1800) * S, v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A point's fields, numbers as their bits.
    type Bits = (i64, Option<u64>, Option<Vec<u8>>, Option<u64>, Option<u64>);

    /// Points compared bit for bit (so that 0.0 and -0.0 differ).
    fn bits(points: &[Point]) -> Vec<Bits> {
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

    fn decoded(data: &[u8]) -> Result<Vec<Point>, Corrupt> {
        let mut out = Vec::new();
        decode_points(data, |p| out.push(p))?;
        Ok(out)
    }

    fn number() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("the store holds no NaN", |v| !v.is_nan()),
            (-10_000_000i64..10_000_000).prop_map(|m| m as f64 / 10.0),
            (-5000i64..5000).prop_map(|m| m as f64),
            Just(-0.0),
            Just(0.0),
        ]
    }

    fn points() -> impl Strategy<Value = Vec<Point>> {
        let time = prop_oneof![any::<i64>(), 0i64..10_000];
        let point = (
            time,
            proptest::option::of(number()),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6)),
            proptest::option::of(number()),
            proptest::option::of(number()),
        )
            .prop_map(|(time, value, payload, sum, update_time)| Point {
                time,
                value,
                payload: payload.map(Arc::from),
                sum,
                update_time,
            });
        proptest::collection::vec(point, 0..300).prop_map(|mut points| {
            points.sort_by_key(|p| p.time);
            points.dedup_by_key(|p| p.time);
            points
        })
    }

    /// A regular series with some jitter and gaps, as meters send.
    fn regular() -> impl Strategy<Value = Vec<Point>> {
        (
            any::<i32>(),
            1i64..1_000_000_000,
            proptest::collection::vec((0i64..3, number()), 1..300),
        )
            .prop_map(|(start, step, steps)| {
                let mut t = i64::from(start) * 1_000_000;
                steps
                    .into_iter()
                    .map(|(skip, v)| {
                        t += step * (1 + skip / 2) + skip;
                        Point {
                            time: t,
                            value: Some(v),
                            payload: None,
                            sum: None,
                            update_time: None,
                        }
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn any_points_round_trip_bit_for_bit(points in points()) {
            for how in [NumberEncoding::Best, NumberEncoding::Xor, NumberEncoding::Scaled] {
                let back = decoded(&encode_points_with(&points, how)).unwrap();
                prop_assert_eq!(bits(&back), bits(&points));
            }
            let back = decoded(&encode_legacy_points(&points)).unwrap();
            prop_assert_eq!(bits(&back), bits(&points));
        }

        #[test]
        fn regular_series_round_trip(points in regular()) {
            prop_assert_eq!(bits(&decoded(&encode_points(&points)).unwrap()), bits(&points));
        }

        #[test]
        fn any_bytes_decode_or_are_refused(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decoded(&data);
            let _ = decode_hours(0, &data, |_, _| {});
            let _ = decode_hour_slots(0, &data, |_, _| {});
        }

        #[test]
        fn damaged_chunks_decode_or_are_refused(
            points in points(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut data = encode_points(&points);
            let i = at.index(data.len());
            data[i] = byte;
            let _ = decoded(&data);
            let _ = decoded(&data[..cut.index(data.len())]);
        }

        #[test]
        fn hours_round_trip_bit_for_bit(
            hours in proptest::collection::btree_map(
                0i64..24,
                (1u64..10_000, number(), number(), number(), 0i64..HOUR, number(), 0i64..HOUR, number()),
                0..24,
            ),
            day in -1_000_000i64..1_000_000,
        ) {
            let day = day * 24 * HOUR;
            let hours: Vec<(i64, Partial)> = hours
                .into_iter()
                .map(|(h, (count, sum, min, max, ft, fv, lt, lv))| {
                    let hour = day + h * HOUR;
                    (hour, Partial { count, sum, min, max, first: (hour + ft, fv), last: (hour + lt, lv) })
                })
                .collect();
            let key = |h: &[(i64, Partial)]| -> Vec<(i64, u64, [u64; 5], i64, i64)> {
                h.iter()
                    .map(|(hour, p)| {
                        (*hour, p.count, [p.sum, p.min, p.max, p.first.1, p.last.1].map(f64::to_bits), p.first.0, p.last.0)
                    })
                    .collect()
            };
            for data in [encode_hours(day, &hours), encode_legacy_hours(day, &hours)] {
                let mut back = Vec::new();
                decode_hours(day, &data, |h, p| back.push((h, p))).unwrap();
                prop_assert_eq!(key(&back), key(&hours));
                let mut slots = Vec::new();
                decode_hour_slots(day, &data, |h, s| slots.push((h, s.count, [s.sum, s.min, s.max].map(f64::to_bits)))).unwrap();
                let expected: Vec<_> = hours.iter().map(|(h, p)| (*h, p.count, [p.sum, p.min, p.max].map(f64::to_bits))).collect();
                prop_assert_eq!(slots, expected);
            }
        }
    }

    #[test]
    fn every_field_and_mixed_presence_round_trip() {
        let points = vec![
            Point {
                time: -5,
                value: Some(1.5),
                payload: None,
                sum: None,
                update_time: None,
            },
            Point {
                time: 7,
                value: None,
                payload: Some(Arc::from(&b"on"[..])),
                sum: Some(2.0),
                update_time: Some(60.0),
            },
            Point {
                time: 9,
                value: None,
                payload: Some(Arc::from(&b"on"[..])),
                sum: None,
                update_time: None,
            },
        ];
        let data = encode_points(&points);
        assert_eq!(data[0], VERSION);
        assert_eq!(bits(&decoded(&data).unwrap()), bits(&points));
        let e = decoded(&data[..data.len() - 1]).unwrap_err();
        assert!(e.0.contains("ends early"), "{e}");
        let e = decoded(&[9]).unwrap_err();
        assert_eq!(e.0, "unknown chunk version 9");
    }

    #[test]
    fn a_declared_count_beyond_the_bound_is_refused_not_built() {
        let mut data = vec![VERSION];
        put_uvarint(&mut data, MAX_POINTS + 1);
        data.push(0);
        let e = decoded(&data).unwrap_err();
        assert!(e.0.contains("more than a chunk holds"), "{e}");
        // Times out of order are refused too.
        let mut data = vec![VERSION, 2, 0];
        put_ints(&mut data, [5, 5]);
        assert!(decoded(&data).unwrap_err().0.contains("time order"));
    }

    #[test]
    fn numbers_with_few_decimals_take_scaled_integers() {
        assert_eq!(decimals_of(&[1.5, 230.25, -7.0]), Some(2));
        assert_eq!(decimals_of(&[0.1, 0.2, 0.30000000000000004]), None);
        assert_eq!(
            decimals_of(&[-0.0]),
            None,
            "-0.0 keeps its sign only as a float"
        );
        assert_eq!(decimals_of(&[f64::INFINITY]), None);
        let scaled = scaled_column(&[1.5, 1.6]).unwrap();
        assert_eq!(scaled, [SCALED, 1, zigzag(15) as u8, zigzag(1) as u8]);
    }

    /// Bytes a point on `days` of a load, each day a chunk, numbers as `how`.
    fn bytes_per_point(days: &[Vec<Point>], how: NumberEncoding) -> f64 {
        let bytes: usize = days.iter().map(|d| encode_points_with(d, how).len()).sum();
        let points: usize = days.iter().map(Vec::len).sum();
        bytes as f64 / points as f64
    }

    #[test]
    fn a_day_of_hours_of_a_load_curve_takes_a_few_bytes_an_hour() {
        let points = loads::household_day(3, 10);
        let hours = crate::chunk::hours_of(&points);
        assert_eq!(hours.len(), 24);
        let day = points[0].time.div_euclid(24 * HOUR) * 24 * HOUR;
        let (lean, legacy) = (encode_hours(day, &hours), encode_legacy_hours(day, &hours));
        assert_eq!(legacy.len(), 1 + 24 * 61);
        assert!(lean.len() < 24 * 13, "{} bytes", lean.len());
        // The sums, not exact with one decimal, are nearly so.
        let sums: Vec<f64> = hours.iter().map(|(_, p)| p.sum).collect();
        let mut column = Vec::new();
        put_numbers(&mut column, &sums, NumberEncoding::Best);
        assert_eq!(column[0], NEAR_SCALED, "{sums:?}");
    }

    #[test]
    fn load_curves_take_about_two_bytes_a_point() {
        let household: Vec<Vec<Point>> = (0..60).map(|d| loads::household_day(d % 7, d)).collect();
        let linky: Vec<Vec<Point>> = (0..60).map(loads::linky_day).collect();
        let legacy: usize = household
            .iter()
            .map(|d| encode_legacy_points(d).len())
            .sum();
        assert!(legacy as f64 / (60.0 * 144.0) > 17.0);
        let (scaled, xor) = (
            bytes_per_point(&household, NumberEncoding::Scaled),
            bytes_per_point(&household, NumberEncoding::Xor),
        );
        assert!(scaled < 2.4 && scaled < xor, "scaled {scaled}, xor {xor}");
        let (scaled, xor) = (
            bytes_per_point(&linky, NumberEncoding::Scaled),
            bytes_per_point(&linky, NumberEncoding::Xor),
        );
        assert!(scaled < 2.4 && scaled < xor, "scaled {scaled}, xor {xor}");
    }
}
