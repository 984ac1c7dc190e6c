//! Accounts of people and their signed-in sessions: the tables, and the
//! rows read and written. An account's password is kept as an Argon2id
//! PHC string, a session's id as its SHA-256.

use crate::db::{Cell, Db, Param};
use crate::error::{Result, corrupt};
use crate::model::{Account, Role, Session, StreamPattern};

/// The tables, with `{int}` and `{blob}` in the backend's types. The
/// foreign keys say what goes with an account; the store deletes it
/// explicitly too, as SQLite enforces them only when asked.
const SCHEMA: &str = r#"
CREATE TABLE accounts (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'member')),
    password_hash TEXT NOT NULL,
    consumption_stream TEXT,
    created {int} NOT NULL
);
CREATE TABLE account_streams (
    account TEXT NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
    pattern TEXT NOT NULL,
    PRIMARY KEY (account, pattern)
);
CREATE TABLE sessions (
    id_hash {blob} PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created {int} NOT NULL,
    last_seen {int} NOT NULL,
    expires {int} NOT NULL
);
CREATE INDEX sessions_account ON sessions (account);
"#;

/// [`SCHEMA`] in one backend's types.
pub(crate) fn schema(int: &str, blob: &str) -> String {
    SCHEMA.replace("{int}", int).replace("{blob}", blob)
}

const ACCOUNT_COLUMNS: &str = "name, display_name, role, consumption_stream, created";

fn text(v: &str) -> Param<'_> {
    Param::Text(Some(v))
}

/// Every account with its password hash, by name; only `name` if given.
pub(crate) fn accounts(db: &mut dyn Db, name: Option<&str>) -> Result<Vec<(Account, String)>> {
    let rows = match name {
        Some(name) => db.query(
            &format!("SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE name = $1"),
            &[text(name)],
        )?,
        None => db.query(
            &format!("SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts ORDER BY name"),
            &[],
        )?,
    };
    let patterns = match name {
        Some(name) => db.query(
            "SELECT account, pattern FROM account_streams WHERE account = $1 ORDER BY pattern",
            &[text(name)],
        )?,
        None => db.query(
            "SELECT account, pattern FROM account_streams ORDER BY account, pattern",
            &[],
        )?,
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let name = row[0].text()?;
        let bad = |e: String| corrupt(format!("account {name:?} in the database"), e);
        let mut streams = Vec::new();
        for p in patterns.iter().filter(|p| p[0] == Cell::Text(name.clone())) {
            streams.push(p[1].text()?.parse::<StreamPattern>().map_err(bad)?);
        }
        let account = Account {
            display_name: row[1].text()?,
            role: row[2].text()?.parse::<Role>().map_err(bad)?,
            consumption_stream: row[3].opt_text()?,
            created: row[4].int()?,
            streams,
            name,
        };
        out.push((account, row[5].text()?));
    }
    Ok(out)
}

/// Writes an account's row (inserting it, or replacing what it holds) and
/// its stream patterns.
pub(crate) fn put(
    db: &mut dyn Db,
    account: &Account,
    password_hash: &str,
    new: bool,
) -> Result<()> {
    let params = [
        text(&account.name),
        text(&account.display_name),
        text(account.role.as_str()),
        text(password_hash),
        Param::Text(account.consumption_stream.as_deref()),
        Param::Int(Some(account.created)),
    ];
    if new {
        db.execute(
            "INSERT INTO accounts (name, display_name, role, password_hash, consumption_stream, created)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &params,
        )?;
    } else {
        db.execute(
            "UPDATE accounts SET display_name = $2, role = $3, password_hash = $4,
             consumption_stream = $5, created = $6 WHERE name = $1",
            &params,
        )?;
        db.execute(
            "DELETE FROM account_streams WHERE account = $1",
            &[text(&account.name)],
        )?;
    }
    for pattern in &account.streams {
        db.execute(
            "INSERT INTO account_streams (account, pattern) VALUES ($1, $2)",
            &[text(&account.name), text(pattern.as_str())],
        )?;
    }
    Ok(())
}

/// Deletes an account, its patterns and its sessions; whether it was there.
pub(crate) fn delete(db: &mut dyn Db, name: &str) -> Result<bool> {
    db.execute("DELETE FROM sessions WHERE account = $1", &[text(name)])?;
    db.execute(
        "DELETE FROM account_streams WHERE account = $1",
        &[text(name)],
    )?;
    Ok(db.execute("DELETE FROM accounts WHERE name = $1", &[text(name)])? > 0)
}

/// Deletes the sessions of an account (a changed password ends them).
pub(crate) fn delete_sessions_of(db: &mut dyn Db, name: &str) -> Result<()> {
    db.execute("DELETE FROM sessions WHERE account = $1", &[text(name)])?;
    Ok(())
}

/// Stores a new session under the hash of its id.
pub(crate) fn insert_session(db: &mut dyn Db, id_hash: &[u8], session: &Session) -> Result<()> {
    db.execute(
        "INSERT INTO sessions (id_hash, account, csrf, created, last_seen, expires)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            Param::Blob(Some(id_hash)),
            text(&session.account),
            text(&session.csrf),
            Param::Int(Some(session.created)),
            Param::Int(Some(session.last_seen)),
            Param::Int(Some(session.expires)),
        ],
    )?;
    Ok(())
}

/// The session whose id hashes to `id_hash`, if any.
pub(crate) fn session(db: &mut dyn Db, id_hash: &[u8]) -> Result<Option<Session>> {
    let rows = db.query(
        "SELECT account, csrf, created, last_seen, expires FROM sessions WHERE id_hash = $1",
        &[Param::Blob(Some(id_hash))],
    )?;
    rows.first()
        .map(|r| {
            Ok(Session {
                account: r[0].text()?,
                csrf: r[1].text()?,
                created: r[2].int()?,
                last_seen: r[3].int()?,
                expires: r[4].int()?,
            })
        })
        .transpose()
}

/// Sets when a session was last used.
pub(crate) fn touch_session(db: &mut dyn Db, id_hash: &[u8], now: i64) -> Result<()> {
    db.execute(
        "UPDATE sessions SET last_seen = $2 WHERE id_hash = $1",
        &[Param::Blob(Some(id_hash)), Param::Int(Some(now))],
    )?;
    Ok(())
}

/// Deletes one session; whether it was there.
pub(crate) fn delete_session(db: &mut dyn Db, id_hash: &[u8]) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM sessions WHERE id_hash = $1",
        &[Param::Blob(Some(id_hash))],
    )? > 0)
}

/// Deletes the sessions ended at `now`: past their end, or idle since
/// before `idle_since`.
pub(crate) fn delete_ended_sessions(db: &mut dyn Db, now: i64, idle_since: i64) -> Result<()> {
    db.execute(
        "DELETE FROM sessions WHERE expires <= $1 OR last_seen <= $2",
        &[Param::Int(Some(now)), Param::Int(Some(idle_since))],
    )?;
    Ok(())
}
