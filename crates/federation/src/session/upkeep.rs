//! What the session does on timers, besides talking: signing audit
//! checkpoints and forgetting old de-duplication entries.

use store::{SigningKey, Store};

/// De-duplication entries are kept this long: far longer than any retry.
const INBOX_KEEP: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Signs the newest audit entry, unless it is signed already; a failure is
/// logged (the next checkpoint covers the same entries).
pub(super) async fn checkpoint(store: &Store, key: &SigningKey) {
    let (store, key) = (store.clone(), key.clone());
    match tokio::task::spawn_blocking(move || store.audit_checkpoint(&key)).await {
        Ok(Ok(Some(seq))) => tracing::debug!("audit checkpoint signed at entry {seq}"),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::error!("audit checkpoint: {e}"),
        Err(e) => tracing::error!("audit checkpoint: {e}"),
    }
}

/// Forgets the inbox's entries older than [`INBOX_KEEP`].
pub(super) async fn prune_inbox(store: &Store) {
    let store = store.clone();
    let before = store::Time::now() - INBOX_KEEP;
    match tokio::task::spawn_blocking(move || store.prune_inbox(before)).await {
        Ok(Ok(n)) => tracing::debug!("{n} de-duplication entries forgotten"),
        Ok(Err(e)) => tracing::error!("pruning the inbox: {e}"),
        Err(e) => tracing::error!("pruning the inbox: {e}"),
    }
}
