//! The one door in, and retention: [`Store::ingest`], [`Store::purge`].

use senml::Record;

use crate::db::{self, Db};
use crate::error::{Error, Result, setting};
use crate::model::{ValueKind, parse_duration};
use crate::{Backend, Store, Time, TimeZone, calendar, chunk, ingest};

impl Store {
    /// Stores the records of one pack (in input order, each with its index
    /// in the pack, as [`senml::resolve_slice_indexed`] gives them) in one
    /// transaction, or refuses them all. New streams are created with
    /// `owner`. Returns the number of points written.
    pub fn ingest(&self, records: &[(usize, Record)], owner: Option<&str>) -> Result<u64> {
        let mut batches = ingest::prepare(records)?;
        let applied = match &self.inner.backend {
            Backend::Sqlite {
                writer, waiting, ..
            } => self.ingest_together(writer, waiting, batches, owner)?,
            Backend::Postgres { .. } => {
                let now = Time::now().as_micros();
                let tz = self.inner.timezone.clone();
                self.write(|db| ingest::apply(db, &mut batches, owner, None, &tz, now))?
            }
        };
        if applied.queued > 0 {
            self.outbox_changed();
        }
        Ok(applied.written)
    }

    /// Deletes the points older than each stream's retention (metadata
    /// `retention`), with their rollups. Returns the points deleted.
    pub fn purge(&self, now: Time) -> Result<u64> {
        let tz = self.inner.timezone.clone();
        let streams = self.read(|db| db.streams(None))?;
        let mut deleted = 0;
        for (id, info) in streams {
            let Some(retention) = &info.metadata.retention else {
                continue;
            };
            let what = || format!("retention {retention} of stream {}", info.name);
            let span = parse_duration(retention).map_err(|e| setting(what(), e))?;
            let cutoff = jiff::Timestamp::from_microsecond(now.as_micros())
                .map(|t| t.to_zoned(tz.clone()))
                .and_then(|z| z.checked_sub(span))
                .map(|z| z.timestamp().as_microsecond())
                .map_err(|e| setting(what(), e))?;
            let before = cutoff;
            if info.first.is_none_or(|first| first >= before) {
                continue;
            }
            let kind = info.kind;
            deleted += self.write(|db| purge_stream(db, id, kind, before, &tz))?;
        }
        Ok(deleted)
    }
}

/// Deletes a stream's points before `before`, and their
/// rollups; recounts the stream.
fn purge_stream(
    db: &mut dyn Db,
    id: i64,
    kind: ValueKind,
    before: i64,
    tz: &TimeZone,
) -> Result<u64> {
    // Against a pack being written to this stream at the same time.
    db.lock_stream(id)?;
    let cut_day = chunk::day_of(before);
    let mut deleted = db.delete_days_before(id, cut_day)?;
    // The day cut in two keeps its later points.
    let day = cut_day;
    let loaded = db::day_chunks(db, id, day)?;
    if !loaded.is_empty() {
        let mut kept = ingest::decode_chunks(id, day, &loaded)?;
        let total = kept.len();
        kept.retain(|p| p.time >= before);
        deleted += (total - kept.len()) as u64;
        db.put_chunks(id, &ingest::rewrite_day(day, &loaded, &kept))?;
        if kind.is_aggregated() {
            let hours = chunk::hours_of(&kept);
            db.put_hours(
                id,
                &[(
                    day,
                    (!hours.is_empty()).then(|| chunk::encode_hours(day, &hours)),
                )],
            )?;
        }
    }
    if kind.is_aggregated() {
        let (node_day, _) = calendar::day_around(before, tz)
            .map_err(|e| Error::Internal(format!("the day of the purge's cutoff {before}: {e}")))?;
        db.delete_days_rollups_before(id, node_day)?;
        ingest::update_days(db, id, &[cut_day], tz)?;
    }
    // Recount from what is left.
    let (count, first_day, last_day) = db.chunk_summary(id)?;
    let mut first = None;
    let mut last = None;
    for day in [first_day, last_day].into_iter().flatten() {
        for p in ingest::decode_chunks(id, day, &db::day_chunks(db, id, day)?)? {
            first = Some(first.map_or(p.time, |f: i64| f.min(p.time)));
            last = Some(last.map_or(p.time, |l: i64| l.max(p.time)));
        }
    }
    db.set_stream_stats(id, count, first, last)?;
    Ok(deleted)
}
