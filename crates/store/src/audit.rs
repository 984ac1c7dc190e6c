//! The audit trail: an append-only log of what the federation did (grants,
//! revocations, commands served or refused, pushes sent, receipts and
//! pushes received), each entry hash-chained to the one before, with
//! Ed25519-signed checkpoints.
//!
//! An entry's hash covers the previous entry's hash and every field of the
//! entry, so altering, inserting or deleting any entry breaks the chain
//! from there on. A checkpoint is a signature of one entry's hash by the
//! node's key, which lives outside the database: whoever can write the
//! database cannot re-sign a rewritten chain.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::{Cell, Db, Dialect, Param};
use crate::error::{Error, Result};

/// An entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When, µs since the epoch.
    pub time: i64,
    /// What happened: `grant`, `revoke`, `command`, `refused`, `push`,
    /// `receipt`, `received`, `erased`.
    pub kind: String,
    /// The peer concerned (a bare JID), if any.
    pub peer: Option<String>,
    /// The facts, as JSON: streams, record count, payload hash, reason…
    pub detail: String,
    /// SHA-256 of the previous entry's hash and this entry, hex.
    #[serde(serialize_with = "as_hex")]
    pub hash: Vec<u8>,
    /// The node's Ed25519 signature of this entry's hash, on checkpoints.
    #[serde(serialize_with = "as_hex_opt")]
    pub signature: Option<Vec<u8>>,
}

fn as_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

fn as_hex_opt<S: serde::Serializer>(
    bytes: &Option<Vec<u8>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => s.serialize_str(&hex(b)),
        None => s.serialize_none(),
    }
}

/// The hash of an entry, chained to `previous`.
fn entry_hash(
    previous: &[u8],
    seq: i64,
    time: i64,
    kind: &str,
    peer: Option<&str>,
    detail: &str,
) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(seq.to_be_bytes());
    h.update(time.to_be_bytes());
    for field in [kind, peer.unwrap_or(""), detail] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.update([u8::from(peer.is_some())]);
    h.finalize().to_vec()
}

/// What a checkpoint signs: a fixed context, the entry's number and hash.
fn checkpoint_message(seq: i64, hash: &[u8]) -> Vec<u8> {
    let mut m = b"fedwatt audit checkpoint\0".to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

/// Appends an entry, inside the caller's transaction.
pub(crate) fn append(
    db: &mut dyn Db,
    time: i64,
    kind: &str,
    peer: Option<&str>,
    detail: &str,
) -> Result<()> {
    if db.dialect() == Dialect::Postgres {
        // One appender at a time, so that the chain stays a chain.
        db.execute("SELECT pg_advisory_xact_lock(7365420212)", &[])?;
    }
    let last = db.query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?;
    let (seq, previous) = match last.first() {
        Some(r) => (r[0].int()? + 1, r[1].blob()?),
        None => (1, vec![0; 32]),
    };
    let hash = entry_hash(&previous, seq, time, kind, peer, detail);
    db.execute(
        "INSERT INTO audit (seq, time, kind, peer, detail, hash) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            Param::Int(Some(seq)),
            Param::Int(Some(time)),
            Param::Text(Some(kind)),
            Param::Text(peer),
            Param::Text(Some(detail)),
            Param::Blob(Some(&hash)),
        ],
    )?;
    Ok(())
}

/// Signs the newest entry, unless it is signed already; returns its number.
pub(crate) fn checkpoint(db: &mut dyn Db, key: &SigningKey) -> Result<Option<i64>> {
    let last = db.query(
        "SELECT seq, hash, signature FROM audit ORDER BY seq DESC LIMIT 1",
        &[],
    )?;
    let Some(row) = last.first() else {
        return Ok(None);
    };
    if row[2] != Cell::Null {
        return Ok(None);
    }
    let seq = row[0].int()?;
    let signature = key.sign(&checkpoint_message(seq, &row[1].blob()?));
    db.execute(
        "UPDATE audit SET signature = $1 WHERE seq = $2",
        &[
            Param::Blob(Some(&signature.to_bytes())),
            Param::Int(Some(seq)),
        ],
    )?;
    Ok(Some(seq))
}

fn entry_from(r: &[Cell]) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r[0].int()?,
        time: r[1].int()?,
        kind: r[2].text()?,
        peer: r[3].opt_text()?,
        detail: r[4].text()?,
        hash: r[5].blob()?,
        signature: match &r[6] {
            Cell::Null => None,
            c => Some(c.blob()?),
        },
    })
}

/// Entries with `seq` in `[from, from + limit)`, in order.
pub(crate) fn entries(db: &mut dyn Db, from: i64, limit: usize) -> Result<Vec<AuditEntry>> {
    db.query(
        "SELECT seq, time, kind, peer, detail, hash, signature FROM audit
         WHERE seq >= $1 ORDER BY seq LIMIT $2",
        &[Param::Int(Some(from)), Param::Int(Some(limit as i64))],
    )?
    .iter()
    .map(|r| entry_from(r))
    .collect()
}

/// Audit entries numbered below `before`, newest first, at most `limit`.
pub(crate) fn entries_before(
    db: &mut dyn Db,
    before: i64,
    limit: usize,
) -> Result<Vec<AuditEntry>> {
    db.query(
        "SELECT seq, time, kind, peer, detail, hash, signature FROM audit
         WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
        &[Param::Int(Some(before)), Param::Int(Some(limit as i64))],
    )?
    .iter()
    .map(|r| entry_from(r))
    .collect()
}

/// Each peer named in the trail, with the time (µs) of its newest entry.
pub(crate) fn peers_last_seen(db: &mut dyn Db) -> Result<Vec<(String, i64)>> {
    db.query(
        "SELECT peer, MAX(time) FROM audit WHERE peer IS NOT NULL GROUP BY peer ORDER BY peer",
        &[],
    )?
    .iter()
    .map(|r| Ok((r[0].text()?, r[1].int()?)))
    .collect()
}

/// What `fedwatt audit verify` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints whose signature verified.
    pub checkpoints: u64,
    /// The number of the last signed entry, if any.
    pub last_checkpoint: Option<i64>,
    /// The first entry that does not hold, and why; `None` if all hold.
    pub broken: Option<(i64, String)>,
}

/// Checks entries in order, carrying the chain from one call to the next.
pub struct AuditVerifier {
    key: VerifyingKey,
    previous: Vec<u8>,
    next_seq: i64,
    /// What was found so far.
    pub report: AuditReport,
}

impl AuditVerifier {
    /// A verifier of a chain from its first entry, with the node's public key.
    pub fn new(key: VerifyingKey) -> AuditVerifier {
        AuditVerifier {
            key,
            previous: vec![0; 32],
            next_seq: 1,
            report: AuditReport {
                entries: 0,
                checkpoints: 0,
                last_checkpoint: None,
                broken: None,
            },
        }
    }

    /// Checks the next entry; returns `false` once the chain is broken.
    pub fn check(&mut self, e: &AuditEntry) -> bool {
        if self.report.broken.is_some() {
            return false;
        }
        let broken = if e.seq != self.next_seq {
            Some(format!(
                "entry {} follows entry {}: an entry is missing",
                e.seq,
                self.next_seq - 1
            ))
        } else if entry_hash(
            &self.previous,
            e.seq,
            e.time,
            &e.kind,
            e.peer.as_deref(),
            &e.detail,
        ) != e.hash
        {
            Some("its content or the entry before it was altered: the hash does not match".into())
        } else if let Some(sig) = &e.signature {
            let valid = <[u8; 64]>::try_from(sig.as_slice())
                .map(|b| Signature::from_bytes(&b))
                .is_ok_and(|s| {
                    self.key
                        .verify(&checkpoint_message(e.seq, &e.hash), &s)
                        .is_ok()
                });
            if valid {
                self.report.checkpoints += 1;
                self.report.last_checkpoint = Some(e.seq);
                None
            } else {
                Some("its checkpoint signature does not verify with this key".into())
            }
        } else {
            None
        };
        if let Some(why) = broken {
            self.report.broken = Some((e.seq, why));
            return false;
        }
        self.report.entries += 1;
        self.previous = e.hash.clone();
        self.next_seq += 1;
        true
    }
}

/// Reads a signing key: 64 hex digits (the 32-byte seed).
pub fn signing_key_from_hex(text: &str) -> Result<SigningKey> {
    let bytes = unhex(text.trim())
        .filter(|b| b.len() == 32)
        .ok_or_else(|| Error::Config("an audit key is 64 hexadecimal digits".into()))?;
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&bytes);
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads a public key: 64 hex digits.
pub fn verifying_key_from_hex(text: &str) -> Result<VerifyingKey> {
    let bytes = unhex(text.trim())
        .filter(|b| b.len() == 32)
        .ok_or_else(|| {
            Error::Invalid(format!("{text:?}: a public key is 64 hexadecimal digits"))
        })?;
    let mut b = [0u8; 32];
    b.copy_from_slice(&bytes);
    VerifyingKey::from_bytes(&b).map_err(|e| Error::Invalid(format!("public key: {e}")))
}

/// A new random signing key.
pub fn new_signing_key() -> Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(Error::NoRandomness)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Bytes as lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(key: &SigningKey) -> Vec<AuditEntry> {
        let mut previous = vec![0; 32];
        (1..=3)
            .map(|seq| {
                let hash = entry_hash(&previous, seq, seq * 10, "push", Some("n@b"), "{}");
                previous = hash.clone();
                let signature = (seq == 2).then(|| {
                    key.sign(&checkpoint_message(seq, &hash))
                        .to_bytes()
                        .to_vec()
                });
                AuditEntry {
                    seq,
                    time: seq * 10,
                    kind: "push".into(),
                    peer: Some("n@b".into()),
                    detail: "{}".into(),
                    hash,
                    signature,
                }
            })
            .collect()
    }

    fn verify(key: &SigningKey, entries: &[AuditEntry]) -> AuditReport {
        let mut v = AuditVerifier::new(key.verifying_key());
        for e in entries {
            v.check(e);
        }
        v.report
    }

    #[test]
    fn an_intact_chain_verifies_with_its_checkpoint() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let report = verify(&key, &chain(&key));
        assert_eq!(report.broken, None);
        assert_eq!((report.entries, report.checkpoints), (3, 1));
        assert_eq!(report.last_checkpoint, Some(2));
    }

    #[test]
    fn an_altered_entry_is_named() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut entries = chain(&key);
        entries[1].detail = r#"{"records":1}"#.into();
        assert_eq!(verify(&key, &entries).broken.unwrap().0, 2);
        let mut entries = chain(&key);
        entries.remove(1);
        assert_eq!(verify(&key, &entries).broken.unwrap().0, 3);
        let other = SigningKey::from_bytes(&[8; 32]);
        let report = verify(&other, &chain(&key));
        assert_eq!(report.broken.unwrap().0, 2);
    }

    #[test]
    fn keys_read_from_hex() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let text = hex(key.as_bytes());
        assert_eq!(
            signing_key_from_hex(&text).unwrap().as_bytes(),
            key.as_bytes()
        );
        assert!(signing_key_from_hex("abc").is_err());
        assert!(verifying_key_from_hex(&hex(key.verifying_key().as_bytes())).is_ok());
    }
}
