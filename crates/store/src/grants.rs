//! Grants: an owner's consent that a peer may receive some streams, for a
//! while, with limits. Revoking one ends its subscriptions and pushes in
//! the same transaction (the outbox is in `federation.rs`).

use serde::Serialize;

use crate::db::{Cell, Db, Param};
use crate::error::{Error, Result, corrupt, setting};
use crate::model::{StreamPattern, parse_duration};

/// An owner's consent that one peer may receive some streams.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    /// Its number, for `revoke`.
    pub id: i64,
    /// The bare JID of the peer it names (`node@b.example`).
    pub grantee: String,
    /// The streams it covers.
    pub streams: StreamPattern,
    /// Why the owner consented, in their words.
    pub purpose: Option<String>,
    /// Valid from this time (µs), if set.
    pub from: Option<i64>,
    /// Valid until this time (µs, excluded), if set.
    pub until: Option<i64>,
    /// How far back the peer may read (ISO 8601 duration).
    pub max_history: Option<String>,
    /// The peer gets means of this period, never raw points (`PT1H`).
    pub min_aggregation: Option<String>,
    /// How long the peer may keep what it receives (`P1Y`).
    pub retention: Option<String>,
    /// When it was given, µs.
    pub created: i64,
    /// When it was revoked, µs, if it was.
    pub revoked: Option<i64>,
}

/// A grant to give, as the owner states it.
#[derive(Debug, Clone)]
pub struct NewGrant {
    /// The peer's bare JID.
    pub grantee: String,
    /// The streams covered.
    pub streams: StreamPattern,
    /// The purpose.
    pub purpose: Option<String>,
    /// Start of validity, µs.
    pub from: Option<i64>,
    /// End of validity, µs.
    pub until: Option<i64>,
    /// History depth (ISO 8601 duration).
    pub max_history: Option<String>,
    /// Minimum aggregation period (`PT30M`, `PT1H`, `P1D`…).
    pub min_aggregation: Option<String>,
    /// Retention the receiver must honour.
    pub retention: Option<String>,
}

impl Grant {
    /// Whether the grant is in force at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked.is_none()
            && self.from.is_none_or(|from| from <= now)
            && self.until.is_none_or(|until| now < until)
    }

    /// Whether it lets its grantee receive `stream` at `now`.
    pub fn allows(&self, stream: &str, now: i64) -> bool {
        self.is_active(now) && self.streams.matches(stream)
    }

    /// The earliest time the grantee may read at `now` (µs).
    pub fn history_start(&self, now: i64) -> Result<i64> {
        let Some(depth) = &self.max_history else {
            return Ok(i64::MIN);
        };
        let what = || format!("max history {depth} of grant {}", self.id);
        let span = parse_duration(depth).map_err(|e| setting(what(), e))?;
        jiff::Timestamp::from_microsecond(now)
            .and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC).checked_sub(span))
            .map(|z| z.timestamp().as_microsecond())
            .map_err(|e| setting(what(), e))
    }
}

/// Checks that `jid` is a bare JID: `local@domain`, no resource.
pub fn check_bare_jid(jid: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Invalid(format!("{jid:?} is not a bare JID ({why})")));
    let Some((local, domain)) = jid.split_once('@') else {
        return bad("expected local@domain");
    };
    if local.is_empty() || domain.is_empty() {
        return bad("expected local@domain");
    }
    if jid.contains('/') {
        return bad("a grant names a bare JID, without /resource");
    }
    if jid.chars().any(|c| c.is_whitespace() || c.is_control()) || domain.contains('@') {
        return bad("spaces, control characters or a second @");
    }
    Ok(())
}

impl NewGrant {
    /// Checks what can be checked before storing it.
    pub fn check(&self) -> Result<()> {
        check_bare_jid(&self.grantee)?;
        for (what, value) in [
            ("max history", &self.max_history),
            ("retention", &self.retention),
        ] {
            if let Some(value) = value {
                parse_duration(value).map_err(|e| Error::Invalid(format!("{what}: {e}")))?;
            }
        }
        if let Some(every) = &self.min_aggregation {
            crate::calendar::Every::parse(every)
                .map_err(|e| Error::Invalid(format!("minimum aggregation: {e}")))?;
        }
        if let (Some(from), Some(until)) = (self.from, self.until)
            && from >= until
        {
            return Err(Error::Invalid(
                "the grant's end must come after its start".into(),
            ));
        }
        if let Some(purpose) = &self.purpose
            && purpose.len() > 1000
        {
            return Err(Error::Invalid(
                "the purpose is longer than 1000 bytes".into(),
            ));
        }
        Ok(())
    }
}

const GRANT_COLUMNS: &str = "id, grantee, streams, purpose, valid_from, valid_until, max_history, min_aggregation, retention, created, revoked";

fn grant_from(row: &[Cell]) -> Result<Grant> {
    let id = row[0].int()?;
    let streams = row[2]
        .text()?
        .parse()
        .map_err(|e| corrupt(format!("grant {id} in the database"), e))?;
    Ok(Grant {
        id,
        grantee: row[1].text()?,
        streams,
        purpose: row[3].opt_text()?,
        from: row[4].opt_int()?,
        until: row[5].opt_int()?,
        max_history: row[6].opt_text()?,
        min_aggregation: row[7].opt_text()?,
        retention: row[8].opt_text()?,
        created: row[9].int()?,
        revoked: row[10].opt_int()?,
    })
}

pub(crate) fn insert_grant(db: &mut dyn Db, grant: &NewGrant, now: i64) -> Result<Grant> {
    let rows = db.query(
        &format!(
            "INSERT INTO grants (grantee, streams, purpose, valid_from, valid_until, max_history, min_aggregation, retention, created)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {GRANT_COLUMNS}"
        ),
        &[
            Param::Text(Some(&grant.grantee)),
            Param::Text(Some(grant.streams.as_str())),
            Param::Text(grant.purpose.as_deref()),
            Param::Int(grant.from),
            Param::Int(grant.until),
            Param::Text(grant.max_history.as_deref()),
            Param::Text(grant.min_aggregation.as_deref()),
            Param::Text(grant.retention.as_deref()),
            Param::Int(Some(now)),
        ],
    )?;
    grant_from(&rows[0])
}

pub(crate) fn grants(db: &mut dyn Db) -> Result<Vec<Grant>> {
    db.query(
        &format!("SELECT {GRANT_COLUMNS} FROM grants ORDER BY id"),
        &[],
    )?
    .iter()
    .map(|r| grant_from(r))
    .collect()
}

pub(crate) fn grant(db: &mut dyn Db, id: i64) -> Result<Option<Grant>> {
    db.query(
        &format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"),
        &[Param::Int(Some(id))],
    )?
    .first()
    .map(|r| grant_from(r))
    .transpose()
}

/// The grants given to `grantee` that are in force at `now`.
pub(crate) fn active_grants(db: &mut dyn Db, grantee: &str, now: i64) -> Result<Vec<Grant>> {
    Ok(db
        .query(
            &format!(
                "SELECT {GRANT_COLUMNS} FROM grants WHERE grantee = $1 AND revoked IS NULL ORDER BY id"
            ),
            &[Param::Text(Some(grantee))],
        )?
        .iter()
        .map(|r| grant_from(r))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|g| g.is_active(now))
        .collect())
}

/// Marks a grant revoked, ends the subscriptions it allowed and the pushes
/// still queued under it, and queues a revocation notice to its grantee.
pub(crate) fn revoke(db: &mut dyn Db, id: i64, now: i64) -> Result<Grant> {
    let grant = grant(db, id)?.ok_or_else(|| Error::NotFound(format!("there is no grant {id}")))?;
    if grant.revoked.is_some() {
        return Err(Error::Invalid(format!("grant {id} is revoked already")));
    }
    db.execute(
        "UPDATE grants SET revoked = $1 WHERE id = $2",
        &[Param::Int(Some(now)), Param::Int(Some(id))],
    )?;
    db.execute(
        "DELETE FROM subscriptions WHERE grant_id = $1",
        &[Param::Int(Some(id))],
    )?;
    db.execute(
        "DELETE FROM outbox WHERE grant_id = $1",
        &[Param::Int(Some(id))],
    )?;
    db.execute(
        "INSERT INTO outbox (peer, kind, grant_id, encoding, created) VALUES ($1, 'revoked', $2, 'xml', $3)",
        &[
            Param::Text(Some(&grant.grantee)),
            Param::Int(Some(id)),
            Param::Int(Some(now)),
        ],
    )?;
    Ok(Grant {
        revoked: Some(now),
        ..grant
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_jids_are_checked() {
        assert!(check_bare_jid("node@b.fedwatt.test").is_ok());
        for bad in [
            "b.fedwatt.test",
            "@b",
            "node@",
            "node@b/res",
            "a b@c",
            "a@b@c",
        ] {
            assert!(check_bare_jid(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_grant_is_active_in_its_window_until_revoked() {
        let mut g = Grant {
            id: 1,
            grantee: "n@b".into(),
            streams: "urn:dev:prm:1_*".parse().unwrap(),
            purpose: None,
            from: Some(100),
            until: Some(200),
            max_history: None,
            min_aggregation: None,
            retention: None,
            created: 0,
            revoked: None,
        };
        assert!(!g.is_active(99));
        assert!(g.is_active(100));
        assert!(g.allows("urn:dev:prm:1_consumption", 150));
        assert!(!g.allows("urn:dev:prm:2_consumption", 150));
        assert!(!g.is_active(200));
        g.revoked = Some(120);
        assert!(!g.is_active(150));
    }
}
