//! What the federation keeps in the store: the owners' grants, the peers'
//! subscriptions, the outbox of pushes to send and the inbox of pushes
//! taken in.
//!
//! The outbox is written in the transaction that stores the data it
//! announces (see `ingest::apply`): a crash can lose neither. An outbox
//! row names a stream and a time range, not the points themselves: the
//! push is built when it is sent, from the store as it is then, and
//! checked against the grant at that moment.
//!
//! Only the node's own streams are granted and pushed; a stream received
//! from a peer belongs to that peer and is never passed on.

use serde::Serialize;

use crate::db::{Db, Param};
use crate::error::{Result, corrupt};

/// Schema 2, what the federation keeps, in the SQL both backends share:
/// `{key}` is the backend's generated key, never reused (a push's sequence
/// number must not come back after its row is deleted), `{int}` its 64-bit
/// integer, `{bytes}` its byte string.
const SCHEMA: &str = r#"
ALTER TABLE streams ADD COLUMN origin TEXT;
CREATE TABLE grants (
    id {key},
    grantee TEXT NOT NULL,
    streams TEXT NOT NULL,
    purpose TEXT,
    valid_from {int},
    valid_until {int},
    max_history TEXT,
    min_aggregation TEXT,
    retention TEXT,
    created {int} NOT NULL,
    revoked {int}
);
CREATE TABLE subscriptions (
    id {key},
    peer TEXT NOT NULL,
    stream {int} NOT NULL,
    grant_id {int} NOT NULL,
    encoding TEXT NOT NULL,
    created {int} NOT NULL,
    UNIQUE (stream, peer)
);
CREATE TABLE outbox (
    seq {key},
    peer TEXT NOT NULL,
    kind TEXT NOT NULL,
    grant_id {int} NOT NULL,
    stream {int},
    from_time {int},
    to_time {int},
    encoding TEXT NOT NULL,
    created {int} NOT NULL,
    attempts {int} NOT NULL DEFAULT 0,
    next_try {int} NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (next_try);
CREATE TABLE inbox (
    peer TEXT NOT NULL,
    seq {int} NOT NULL,
    received {int} NOT NULL,
    PRIMARY KEY (peer, seq)
);
CREATE TABLE received_streams (
    stream {int} NOT NULL,
    peer TEXT NOT NULL,
    grant_id {int} NOT NULL,
    PRIMARY KEY (stream, peer, grant_id)
);
CREATE TABLE remote_subscriptions (
    peer TEXT NOT NULL,
    stream TEXT NOT NULL,
    created {int} NOT NULL,
    PRIMARY KEY (peer, stream)
);
CREATE TABLE audit (
    seq {int} PRIMARY KEY,
    time {int} NOT NULL,
    kind TEXT NOT NULL,
    peer TEXT,
    detail TEXT NOT NULL,
    hash {bytes} NOT NULL,
    signature {bytes}
);
"#;

/// [`SCHEMA`] in one backend's types.
pub(crate) fn schema(key: &str, int: &str, bytes: &str) -> String {
    SCHEMA
        .replace("{key}", key)
        .replace("{int}", int)
        .replace("{bytes}", bytes)
}

/// How pushes to a subscriber are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// SenML XML records, as any Quoalise client reads them.
    Xml,
    /// SenML CBOR in one element, for fedwatt peers that asked for it.
    Cbor,
}

impl Encoding {
    /// Its name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Xml => "xml",
            Encoding::Cbor => "cbor",
        }
    }

    fn parse(text: &str) -> Result<Encoding> {
        match text {
            "xml" => Ok(Encoding::Xml),
            "cbor" => Ok(Encoding::Cbor),
            other => Err(corrupt(
                "a subscription's encoding in the database",
                format!("{other:?} is neither xml nor cbor"),
            )),
        }
    }
}

/// A peer's subscription to a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscription {
    /// The subscriber's bare JID; pushes go there.
    pub peer: String,
    /// The stream.
    pub stream: String,
    /// The grant that allowed it.
    pub grant: i64,
    /// How pushes are encoded.
    pub encoding: Encoding,
    /// Since when, µs.
    pub created: i64,
}

pub(crate) fn subscribe(
    db: &mut dyn Db,
    peer: &str,
    stream: i64,
    grant: i64,
    encoding: Encoding,
    now: i64,
) -> Result<()> {
    // A second subscribe renews the first: same stream, newest grant.
    db.execute(
        "DELETE FROM subscriptions WHERE stream = $1 AND peer = $2",
        &[Param::Int(Some(stream)), Param::Text(Some(peer))],
    )?;
    db.execute(
        "INSERT INTO subscriptions (peer, stream, grant_id, encoding, created) VALUES ($1, $2, $3, $4, $5)",
        &[
            Param::Text(Some(peer)),
            Param::Int(Some(stream)),
            Param::Int(Some(grant)),
            Param::Text(Some(encoding.as_str())),
            Param::Int(Some(now)),
        ],
    )?;
    Ok(())
}

pub(crate) fn unsubscribe(db: &mut dyn Db, peer: &str, stream: i64) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM subscriptions WHERE stream = $1 AND peer = $2",
        &[Param::Int(Some(stream)), Param::Text(Some(peer))],
    )? > 0)
}

/// Ends `peer`'s subscription to `stream` if it is the one under `grant`
/// (not one made since under another grant).
pub(crate) fn unsubscribe_under(
    db: &mut dyn Db,
    peer: &str,
    stream: i64,
    grant: i64,
) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM subscriptions WHERE stream = $1 AND peer = $2 AND grant_id = $3",
        &[
            Param::Int(Some(stream)),
            Param::Text(Some(peer)),
            Param::Int(Some(grant)),
        ],
    )? > 0)
}

pub(crate) fn subscriptions(db: &mut dyn Db) -> Result<Vec<Subscription>> {
    db.query(
        "SELECT s.peer, t.name, s.grant_id, s.encoding, s.created
         FROM subscriptions s JOIN streams t ON t.id = s.stream ORDER BY s.peer, t.name",
        &[],
    )?
    .iter()
    .map(|r| {
        Ok(Subscription {
            peer: r[0].text()?,
            stream: r[1].text()?,
            grant: r[2].int()?,
            encoding: Encoding::parse(&r[3].text()?)?,
            created: r[4].int()?,
        })
    })
    .collect()
}

/// Points a push carries at most: 2,000 SenML XML records are about 80 kB,
/// well under the 256 KiB stanza limit of a stock Prosody.
pub const PUSH_RECORDS: usize = 2_000;

/// Queues a push of `[from, to)` of a stream to each of its subscribers,
/// in the transaction that stored those points. Returns the rows queued.
pub(crate) fn enqueue_pushes(
    db: &mut dyn Db,
    stream: i64,
    from: i64,
    to: i64,
    now: i64,
) -> Result<u64> {
    db.execute(
        "INSERT INTO outbox (peer, kind, grant_id, stream, from_time, to_time, encoding, created)
         SELECT peer, 'data', grant_id, stream, $1, $2, encoding, $3 FROM subscriptions WHERE stream = $4",
        &[
            Param::Int(Some(from)),
            Param::Int(Some(to)),
            Param::Int(Some(now)),
            Param::Int(Some(stream)),
        ],
    )
}

/// What a queued push announces.
#[derive(Debug, Clone, PartialEq)]
pub enum PushKind {
    /// The points of a stream in `[from, to)`.
    Data {
        /// The stream's name.
        stream: String,
        /// Start, µs.
        from: i64,
        /// End, µs, excluded.
        to: i64,
    },
    /// The grant was revoked: the peer must delete what it received under it.
    Revoked,
}

/// A push waiting in the outbox for its receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// Sequence number, unique among this node's pushes, increasing.
    pub seq: i64,
    /// The bare JID it goes to.
    pub peer: String,
    /// The grant it is sent under.
    pub grant: i64,
    /// What it carries.
    pub kind: PushKind,
    /// How to encode it.
    pub encoding: Encoding,
    /// How many times it was sent before.
    pub attempts: u32,
}

/// Delay before re-sending a push that was sent `attempts` times without
/// a receipt: 5 s, doubling, at most 5 minutes.
pub fn retry_delay(attempts: u32) -> i64 {
    let seconds = 5i64 << attempts.min(6);
    seconds.min(300) * 1_000_000
}

/// Pushes claimed in one call, at most.
pub const CLAIM_MAX: usize = 256;

/// Claims the pushes due at `now` (at most `limit`, and at most
/// [`CLAIM_MAX`]), oldest first, and schedules their next attempt, as if
/// each were sent now. A push that is
/// acknowledged meanwhile is deleted; one that is not comes back due.
pub(crate) fn claim_due(db: &mut dyn Db, now: i64, limit: usize) -> Result<Vec<Push>> {
    let lock = match db.dialect() {
        crate::db::Dialect::Postgres => " FOR UPDATE OF o SKIP LOCKED",
        crate::db::Dialect::Sqlite => "",
    };
    // The limit is written in the statement, not bound: SQLite compiles a
    // statement again whenever the value bound to its LIMIT changes.
    let rows = db.query(
        &format!(
            "SELECT o.seq, o.peer, o.grant_id, o.kind, t.name, o.from_time, o.to_time, o.encoding, o.attempts
             FROM outbox o LEFT JOIN streams t ON t.id = o.stream
             WHERE o.next_try <= $1 ORDER BY o.seq LIMIT {CLAIM_MAX}{lock}"
        ),
        &[Param::Int(Some(now))],
    )?;
    let mut pushes = Vec::with_capacity(rows.len().min(limit));
    for r in rows.into_iter().take(limit) {
        let seq = r[0].int()?;
        let attempts = r[8].int()?.clamp(0, u32::MAX.into()) as u32;
        let kind = match r[3].text()?.as_str() {
            "revoked" => PushKind::Revoked,
            _ => match r[4].opt_text()? {
                Some(stream) => PushKind::Data {
                    stream,
                    from: r[5].int()?,
                    to: r[6].int()?,
                },
                None => {
                    // Its stream is gone: nothing left to send.
                    db.execute(
                        "DELETE FROM outbox WHERE seq = $1",
                        &[Param::Int(Some(seq))],
                    )?;
                    continue;
                }
            },
        };
        db.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_try = $1 WHERE seq = $2",
            &[
                Param::Int(Some(now + retry_delay(attempts))),
                Param::Int(Some(seq)),
            ],
        )?;
        pushes.push(Push {
            seq,
            peer: r[1].text()?,
            grant: r[2].int()?,
            kind,
            encoding: Encoding::parse(&r[7].text()?)?,
            attempts,
        });
    }
    Ok(pushes)
}

/// Puts off to `until` the retries of the pushes sent to `peer` after
/// `after` (by sequence number) and not yet acknowledged.
pub(crate) fn postpone_retries(db: &mut dyn Db, peer: &str, after: i64, until: i64) -> Result<()> {
    db.execute(
        "UPDATE outbox SET next_try = $1
         WHERE peer = $2 AND seq > $3 AND attempts > 0 AND next_try < $1",
        &[
            Param::Int(Some(until)),
            Param::Text(Some(peer)),
            Param::Int(Some(after)),
        ],
    )?;
    Ok(())
}

/// Deletes an acknowledged (or abandoned) push; whether it was there.
pub(crate) fn delete_push(db: &mut dyn Db, peer: &str, seq: i64) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM outbox WHERE seq = $1 AND peer = $2",
        &[Param::Int(Some(seq)), Param::Text(Some(peer))],
    )? > 0)
}

/// Which of the pushes `seqs` are still in the outbox (a push's sequence
/// number is the outbox's key), in one statement.
pub(crate) fn queued(db: &mut dyn Db, seqs: &[i64]) -> Result<std::collections::HashSet<i64>> {
    if seqs.is_empty() {
        return Ok(Default::default());
    }
    let placeholders: Vec<String> = (1..=seqs.len()).map(|i| format!("${i}")).collect();
    let params: Vec<Param<'_>> = seqs.iter().map(|s| Param::Int(Some(*s))).collect();
    db.query(
        &format!(
            "SELECT seq FROM outbox WHERE seq IN ({})",
            placeholders.join(", ")
        ),
        &params,
    )?
    .iter()
    .map(|row| row[0].int())
    .collect()
}

/// Number of pushes waiting in the outbox.
pub(crate) fn outbox_len(db: &mut dyn Db) -> Result<u64> {
    Ok(db.query("SELECT count(*) FROM outbox", &[])?[0][0].int()? as u64)
}

/// Whether the push `seq` of `peer` was taken in already.
pub(crate) fn was_received(db: &mut dyn Db, peer: &str, seq: i64) -> Result<bool> {
    Ok(!db
        .query(
            "SELECT 1 FROM inbox WHERE peer = $1 AND seq = $2",
            &[Param::Text(Some(peer)), Param::Int(Some(seq))],
        )?
        .is_empty())
}

/// Records a push taken in; `false` if it was taken in before.
pub(crate) fn note_received(db: &mut dyn Db, peer: &str, seq: i64, now: i64) -> Result<bool> {
    Ok(db.execute(
        "INSERT INTO inbox (peer, seq, received) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[
            Param::Text(Some(peer)),
            Param::Int(Some(seq)),
            Param::Int(Some(now)),
        ],
    )? > 0)
}

/// Remembers that `stream` holds what `peer` sent under its grant `grant`.
pub(crate) fn note_received_stream(
    db: &mut dyn Db,
    stream: i64,
    peer: &str,
    grant: i64,
) -> Result<()> {
    db.execute(
        "INSERT INTO received_streams (stream, peer, grant_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[
            Param::Int(Some(stream)),
            Param::Text(Some(peer)),
            Param::Int(Some(grant)),
        ],
    )?;
    Ok(())
}

/// The streams received from `peer` under its grant `grant`.
pub(crate) fn received_streams(db: &mut dyn Db, peer: &str, grant: i64) -> Result<Vec<i64>> {
    db.query(
        "SELECT stream FROM received_streams WHERE peer = $1 AND grant_id = $2 ORDER BY stream",
        &[Param::Text(Some(peer)), Param::Int(Some(grant))],
    )?
    .iter()
    .map(|r| r[0].int())
    .collect()
}

/// Deletes a stream with its points, rollups and federation rows; returns
/// its number of points.
pub(crate) fn delete_stream(db: &mut dyn Db, stream: i64) -> Result<u64> {
    let count = db
        .query(
            "SELECT count FROM streams WHERE id = $1",
            &[Param::Int(Some(stream))],
        )?
        .first()
        .map(|r| r[0].int())
        .transpose()?
        .unwrap_or(0);
    for table in [
        "DELETE FROM chunks WHERE stream = $1",
        "DELETE FROM hours WHERE stream = $1",
        "DELETE FROM days WHERE stream = $1",
        "DELETE FROM subscriptions WHERE stream = $1",
        "DELETE FROM outbox WHERE stream = $1",
        "DELETE FROM received_streams WHERE stream = $1",
        "DELETE FROM streams WHERE id = $1",
    ] {
        db.execute(table, &[Param::Int(Some(stream))])?;
    }
    Ok(count.max(0) as u64)
}

/// Remembers that this node subscribed to `stream` at `peer`: pushes of
/// that stream from that peer are taken in.
pub(crate) fn add_remote_subscription(
    db: &mut dyn Db,
    peer: &str,
    stream: &str,
    now: i64,
) -> Result<()> {
    db.execute(
        "INSERT INTO remote_subscriptions (peer, stream, created) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[
            Param::Text(Some(peer)),
            Param::Text(Some(stream)),
            Param::Int(Some(now)),
        ],
    )?;
    Ok(())
}

pub(crate) fn remove_remote_subscription(
    db: &mut dyn Db,
    peer: &str,
    stream: &str,
) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM remote_subscriptions WHERE peer = $1 AND stream = $2",
        &[Param::Text(Some(peer)), Param::Text(Some(stream))],
    )? > 0)
}

/// The streams this node subscribed to at `peer`.
pub(crate) fn remote_subscriptions(db: &mut dyn Db, peer: &str) -> Result<Vec<String>> {
    db.query(
        "SELECT stream FROM remote_subscriptions WHERE peer = $1 ORDER BY stream",
        &[Param::Text(Some(peer))],
    )?
    .iter()
    .map(|r| r[0].text())
    .collect()
}

/// Forgets the inbox entries older than `before`: a push re-sent later than
/// that is taken in again, harmlessly, since points replace.
pub(crate) fn prune_inbox(db: &mut dyn Db, before: i64) -> Result<u64> {
    db.execute(
        "DELETE FROM inbox WHERE received < $1",
        &[Param::Int(Some(before))],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_five_minutes() {
        assert_eq!(retry_delay(0), 5_000_000);
        assert_eq!(retry_delay(1), 10_000_000);
        assert_eq!(retry_delay(20), 300_000_000);
    }
}
