//! Streams and what is read from them: records, aggregates, profiles.

use senml::Record;

use crate::calendar::{Every, ProfileBy};
use crate::error::{Error, Result};
use crate::model::{Metadata, StreamInfo};
use crate::query::{self, Aggregate, Profile};
use crate::{Store, Time, TimeZone};

/// What the store answers to a records query: each stream with its records.
pub type StreamRecords = Vec<(StreamInfo, Vec<Record>)>;

impl Store {
    /// Streams whose name starts with `prefix`, by name.
    pub fn streams(&self, prefix: Option<&str>) -> Result<Vec<StreamInfo>> {
        self.read(|db| Ok(db.streams(prefix)?.into_iter().map(|(_, s)| s).collect()))
    }

    /// One stream.
    pub fn stream(&self, name: &str) -> Result<Option<StreamInfo>> {
        self.read(|db| Ok(db.stream(name)?.map(|(_, s)| s)))
    }

    /// Replaces a stream's metadata and publication.
    pub fn set_stream(&self, name: &str, metadata: &Metadata, open: bool) -> Result<StreamInfo> {
        metadata.check()?;
        self.write(|db| {
            let (id, _) = db
                .stream(name)?
                .ok_or_else(|| Error::NotFound(format!("no stream named {name:?}")))?;
            db.set_stream(id, metadata, open)?;
            Ok(db
                .stream(name)?
                .expect("the stream was found in this transaction")
                .1)
        })
    }

    /// The records of each named stream in `[from, to)`, oldest first, at
    /// most `limit` per stream, in memory; refused when they would be more
    /// than `max_total` in all. [`Store::scan_records`] streams them instead.
    pub fn records(
        &self,
        names: &[String],
        from: Time,
        to: Time,
        limit: u64,
        max_total: usize,
    ) -> Result<StreamRecords> {
        self.read(|db| {
            let streams = query::resolve_streams(db, names, false)?;
            let records = query::records(
                db,
                &streams,
                from.as_micros(),
                to.as_micros(),
                limit,
                max_total,
            )?;
            Ok(streams.into_iter().map(|(_, s)| s).zip(records).collect())
        })
    }

    /// Visits the records of each named stream in `[from, to)`, stream by
    /// stream, oldest first, at most `limit` per stream, until `visit`
    /// returns false. Memory stays bounded whatever the range. `visit` gets
    /// the index of the record's stream in `names`.
    pub fn scan_records(
        &self,
        names: &[String],
        from: Time,
        to: Time,
        limit: u64,
        visit: &mut dyn FnMut(usize, Record) -> bool,
    ) -> Result<()> {
        self.read(|db| {
            let streams = query::resolve_streams(db, names, false)?;
            query::scan_records(db, &streams, from.as_micros(), to.as_micros(), limit, visit)
        })
    }

    /// Calendar buckets of `every` in `tz` covering `[from, to)`, with each
    /// stream's partial aggregate per bucket. Reads daily rollups, hourly
    /// rollups, or points, whichever is the coarsest that fits the buckets.
    pub fn aggregate(
        &self,
        names: &[String],
        from: Time,
        to: Time,
        every: Every,
        tz: &TimeZone,
    ) -> Result<Aggregate> {
        let node_tz = self.inner.timezone.clone();
        self.read(|db| {
            let streams = query::resolve_streams(db, names, true)?;
            query::aggregate(
                db,
                streams,
                from.as_micros(),
                to.as_micros(),
                every,
                tz,
                &node_tz,
            )
        })
    }

    /// The typical day or week of each stream over `[from, to)`, in `tz`.
    pub fn profile(
        &self,
        names: &[String],
        from: Time,
        to: Time,
        by: ProfileBy,
        tz: &TimeZone,
    ) -> Result<Profile> {
        self.read(|db| {
            let streams = query::resolve_streams(db, names, true)?;
            query::profile(db, streams, from.as_micros(), to.as_micros(), by, tz)
        })
    }
}
