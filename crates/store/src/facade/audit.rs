//! The audit trail's facade.

use crate::error::Result;
use crate::{AuditEntry, AuditReport, AuditVerifier, SigningKey, Store, Time, VerifyingKey, audit};

impl Store {
    /// Appends entries to the audit trail, in one transaction: each is a
    /// kind, the peer concerned, and the facts as JSON.
    pub fn audit(&self, entries: &[(&str, Option<&str>, serde_json::Value)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let now = Time::now().as_micros();
        self.write(|db| {
            for (kind, peer, detail) in entries {
                audit::append(db, now, kind, *peer, &detail.to_string())?;
            }
            Ok(())
        })
    }

    /// Signs the newest audit entry with the node's key, unless it is
    /// signed already; returns its number.
    pub fn audit_checkpoint(&self, key: &SigningKey) -> Result<Option<i64>> {
        self.write(|db| audit::checkpoint(db, key))
    }

    /// Audit entries from number `from`, at most `limit`.
    pub fn audit_entries(&self, from: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(|db| audit::entries(db, from, limit))
    }

    /// Audit entries numbered below `before`, newest first, at most `limit`
    /// (`i64::MAX` for the newest).
    pub fn audit_entries_before(&self, before: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(|db| audit::entries_before(db, before, limit))
    }

    /// Each peer the audit trail names, with the time (µs) of its newest
    /// entry, by peer.
    pub fn audit_peers(&self) -> Result<Vec<(String, i64)>> {
        self.read(audit::peers_last_seen)
    }

    /// Re-checks the whole audit chain and its checkpoints against `key`.
    pub fn verify_audit(&self, key: VerifyingKey) -> Result<AuditReport> {
        let mut verifier = AuditVerifier::new(key);
        let mut from = 1;
        loop {
            let page = self.audit_entries(from, 10_000)?;
            let Some(last) = page.last() else { break };
            from = last.seq + 1;
            if !page.iter().all(|e| verifier.check(e)) {
                break;
            }
        }
        Ok(verifier.report)
    }
}
