//! Accounts and sessions: people who sign in to the node's web UI with a
//! password, and the sessions they hold.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::accounts;
use crate::error::{Error, Result};
use crate::model::{Account, AccountChange, NewAccount, Session, StreamPattern};
use crate::{Store, Time};

/// A session ends after this long unused (µs): 12 hours.
pub const SESSION_IDLE: i64 = 12 * 3600 * 1_000_000;

/// A session ends this long after it began, however used (µs): 7 days.
pub const SESSION_LIFETIME: i64 = 7 * 24 * 3600 * 1_000_000;

/// A session's last use is written at most this often (µs): a minute.
const TOUCH_EVERY: i64 = 60 * 1_000_000;

/// Stream patterns an account holds, at most.
const MAX_PATTERNS: usize = 100;

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD: usize = 10;

fn field(field: &'static str, detail: impl Into<String>) -> Error {
    Error::Field {
        field,
        detail: detail.into(),
    }
}

/// Checks an account name: `[a-z0-9._-]{1,64}`.
pub fn check_account_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return Err(field(
            "account",
            format!("account name {name:?}: give 1 to 64 of a-z, 0-9, dot, underscore and hyphen"),
        ));
    }
    Ok(())
}

fn check_display_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(field(
            "display_name",
            "the display name must be 1 to 200 bytes of printable characters",
        ));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(field(
            "password",
            format!("the password must be at least {MIN_PASSWORD} characters long"),
        ));
    }
    if password.len() > 1024 {
        return Err(field("password", "the password is longer than 1024 bytes"));
    }
    Ok(())
}

fn check_streams(streams: &[StreamPattern]) -> Result<()> {
    if streams.len() > MAX_PATTERNS {
        return Err(field(
            "streams",
            format!("an account holds at most {MAX_PATTERNS} stream patterns"),
        ));
    }
    for (i, p) in streams.iter().enumerate() {
        if streams[..i].contains(p) {
            return Err(field(
                "streams",
                format!("stream pattern {:?} is given twice", p.as_str()),
            ));
        }
    }
    Ok(())
}

fn check_consumption(stream: Option<&str>) -> Result<()> {
    let Some(stream) = stream else { return Ok(()) };
    let bad = |why: String| {
        field(
            "consumption_stream",
            format!("consumption stream {stream:?}: {why}"),
        )
    };
    stream.parse::<StreamPattern>().map_err(bad)?;
    if stream.contains('*') {
        return Err(bad("name one stream, not a pattern".into()));
    }
    Ok(())
}

/// `password` as an Argon2id PHC string, with a random salt.
fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(Error::NoRandomness)?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::Internal(format!("a password's salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` is the one `phc` was made from.
fn password_matches(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash checked when the account does not exist, so that an unknown
/// account takes as long to refuse as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("not the password of anyone").unwrap_or_default())
}

fn random_text() -> Result<String> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(Error::NoRandomness)?;
    Ok(URL_SAFE_NO_PAD.encode(random))
}

fn id_hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

impl Store {
    /// Creates an account; refused, naming the field, if one is wrong or
    /// the name is taken. Nothing is stored then.
    pub fn add_account(&self, new: &NewAccount) -> Result<Account> {
        check_account_name(&new.name)?;
        check_display_name(&new.display_name)?;
        check_password(&new.password)?;
        check_streams(&new.streams)?;
        check_consumption(new.consumption_stream.as_deref())?;
        let hash = hash_password(&new.password)?;
        let account = Account {
            name: new.name.clone(),
            display_name: new.display_name.trim().to_owned(),
            role: new.role,
            streams: new.streams.clone(),
            consumption_stream: new.consumption_stream.clone(),
            created: Time::now().as_micros(),
        };
        self.write(|db| {
            if !accounts::accounts(db, Some(&account.name))?.is_empty() {
                return Err(Error::Conflict(format!(
                    "an account named {:?} exists already",
                    account.name
                )));
            }
            accounts::put(db, &account, &hash, true)
        })?;
        Ok(account)
    }

    /// Changes an account; checked whole before anything is written. A
    /// new password ends the account's sessions.
    pub fn update_account(&self, name: &str, change: &AccountChange) -> Result<Account> {
        if let Some(display_name) = &change.display_name {
            check_display_name(display_name)?;
        }
        if let Some(password) = &change.password {
            check_password(password)?;
        }
        if let Some(streams) = &change.streams {
            check_streams(streams)?;
        }
        if let Some(consumption) = &change.consumption_stream {
            check_consumption(consumption.as_deref())?;
        }
        let new_hash = change.password.as_deref().map(hash_password).transpose()?;
        self.write(|db| {
            let (mut account, mut hash) = accounts::accounts(db, Some(name))?
                .pop()
                .ok_or_else(|| Error::NotFound(format!("no account named {name:?}")))?;
            if let Some(display_name) = &change.display_name {
                account.display_name = display_name.trim().to_owned();
            }
            if let Some(role) = change.role {
                account.role = role;
            }
            if let Some(streams) = &change.streams {
                account.streams = streams.clone();
            }
            if let Some(consumption) = &change.consumption_stream {
                account.consumption_stream = consumption.clone();
            }
            if let Some(new_hash) = &new_hash {
                hash = new_hash.clone();
                accounts::delete_sessions_of(db, name)?;
            }
            accounts::put(db, &account, &hash, false)?;
            Ok(account)
        })
    }

    /// Deletes an account and its sessions; `false` if there was none.
    pub fn remove_account(&self, name: &str) -> Result<bool> {
        self.write(|db| accounts::delete(db, name))
    }

    /// Every account, by name.
    pub fn accounts(&self) -> Result<Vec<Account>> {
        self.read(|db| {
            Ok(accounts::accounts(db, None)?
                .into_iter()
                .map(|(a, _)| a)
                .collect())
        })
    }

    /// One account.
    pub fn account(&self, name: &str) -> Result<Option<Account>> {
        self.read(|db| Ok(accounts::accounts(db, Some(name))?.pop().map(|(a, _)| a)))
    }

    /// The account, if `password` is its password. An unknown account
    /// takes as long to answer as a wrong password.
    pub fn verify_password(&self, name: &str, password: &str) -> Result<Option<Account>> {
        let found = self.read(|db| Ok(accounts::accounts(db, Some(name))?.pop()))?;
        Ok(match found {
            Some((account, hash)) => password_matches(&hash, password).then_some(account),
            None => {
                password_matches(decoy_hash(), password);
                None
            }
        })
    }

    /// Opens a session for an account: returns its id, which only the
    /// client keeps (the store keeps its hash), and the session. Sessions
    /// ended by then are deleted on the way.
    pub fn create_session(&self, account: &str) -> Result<(String, Session)> {
        let id = random_text()?;
        let now = Time::now().as_micros();
        let session = Session {
            account: account.to_owned(),
            csrf: random_text()?,
            created: now,
            last_seen: now,
            expires: now + SESSION_LIFETIME,
        };
        let hash = id_hash(&id);
        self.write(|db| {
            if accounts::accounts(db, Some(account))?.is_empty() {
                return Err(Error::NotFound(format!("no account named {account:?}")));
            }
            accounts::delete_ended_sessions(db, now, now - SESSION_IDLE)?;
            accounts::insert_session(db, &hash, &session)
        })?;
        Ok((id, session))
    }

    /// The account and session of session id `id`, if it is open: neither
    /// past its end nor idle too long (an ended one is deleted). Its last
    /// use is brought up to date.
    pub fn resolve_session(&self, id: &str) -> Result<Option<(Account, Session)>> {
        let hash = id_hash(id);
        let now = Time::now().as_micros();
        let found = self.read(|db| {
            let Some(session) = accounts::session(db, &hash)? else {
                return Ok(None);
            };
            let account = accounts::accounts(db, Some(&session.account))?.pop();
            Ok(account.map(|(a, _)| (a, session)))
        })?;
        let Some((account, mut session)) = found else {
            return Ok(None);
        };
        if now >= session.expires || now >= session.last_seen + SESSION_IDLE {
            self.write(|db| accounts::delete_session(db, &hash))?;
            return Ok(None);
        }
        if now - session.last_seen >= TOUCH_EVERY {
            self.write(|db| accounts::touch_session(db, &hash, now))?;
            session.last_seen = now;
        }
        Ok(Some((account, session)))
    }

    /// Ends the session of id `id`; `false` if there was none.
    pub fn delete_session(&self, id: &str) -> Result<bool> {
        let hash = id_hash(id);
        self.write(|db| accounts::delete_session(db, &hash))
    }
}
