//! How the rest of the node reaches the control loop ([`Handle`]), and
//! what the loop sends its journal's reader ([`Note`]).
//!
//! A plan or a stimulation given through a [`Handle`] (the HTTP API) is
//! answered once the journal's reader has kept it: the loop hands its
//! [`Kept`] to the reader with the journal entry, and the reader says when
//! the entry is stored. So an acknowledged plan survives a crash, and plans
//! from every source are kept by the same code.

use control::fleet::EquipmentConfig;
use control::journal::{JournalEntry, Source};
use control::model::Mode;
use control::status::EquipmentStatus;
use control::{Error, Result};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// What another part of the node asks the loop.
pub(crate) enum Request {
    Status(oneshot::Sender<Vec<EquipmentStatus>>),
    Plan {
        equipment: String,
        plan: Value,
        source: Source,
        kept: Option<Kept>,
        done: oneshot::Sender<Result<()>>,
    },
    Mode {
        equipment: String,
        mode: Mode,
        done: oneshot::Sender<Result<()>>,
    },
    Stimulate {
        body: Value,
        source: Source,
        kept: Option<Kept>,
        done: oneshot::Sender<Result<i64>>,
    },
    Add {
        equipment: Box<EquipmentConfig>,
        done: oneshot::Sender<Result<()>>,
    },
}

/// An entry of the journal, as the loop sends it to the journal's reader.
#[derive(Debug)]
pub struct Note {
    /// What happened.
    pub entry: JournalEntry,
    /// For a plan or stimulation that a caller waits for: answer it once
    /// the entry is stored (or could not be).
    pub kept: Option<Kept>,
}

/// Someone waiting for a journal entry to be kept.
#[derive(Debug)]
pub struct Kept(oneshot::Sender<std::result::Result<(), String>>);

impl Kept {
    /// One waiting, and what it waits on.
    fn pair() -> (Kept, oneshot::Receiver<std::result::Result<(), String>>) {
        let (tx, rx) = oneshot::channel();
        (Kept(tx), rx)
    }

    /// One waiting on `tx`.
    #[cfg(test)]
    pub(crate) fn from_sender(tx: oneshot::Sender<std::result::Result<(), String>>) -> Kept {
        Kept(tx)
    }

    /// Says that the entry is stored (`Ok`) or why it is not.
    pub fn done(self, outcome: std::result::Result<(), String>) {
        let _ = self.0.send(outcome);
    }
}

/// How the rest of the node reaches the control loop. Cheap to clone.
#[derive(Clone)]
pub struct Handle(mpsc::Sender<Request>);

/// What [`run`](crate::run) takes requests from: the other end of a
/// [`Handle`].
pub struct Requests(pub(crate) mpsc::Receiver<Request>);

/// A handle, and the requests end to give [`run`](crate::run).
pub fn handle() -> (Handle, Requests) {
    let (tx, rx) = mpsc::channel(1024);
    (Handle(tx), Requests(rx))
}

/// One waiting for an entry from `source` to be kept: none for what comes
/// back from the store (kept already).
fn waiting(
    source: Source,
) -> (
    Option<Kept>,
    Option<oneshot::Receiver<std::result::Result<(), String>>>,
) {
    match source {
        Source::Store => (None, None),
        Source::Mqtt | Source::Api => {
            let (kept, is_kept) = Kept::pair();
            (Some(kept), Some(is_kept))
        }
    }
}

/// Waits until the journal's reader kept the entry.
async fn until_kept(
    is_kept: Option<oneshot::Receiver<std::result::Result<(), String>>>,
) -> Result<()> {
    let Some(is_kept) = is_kept else {
        return Ok(());
    };
    match is_kept.await {
        Ok(outcome) => outcome.map_err(Error::NotKept),
        Err(_) => Err(Error::NotKept("the journal's reader is gone".into())),
    }
}

impl Handle {
    async fn ask<T>(&self, request: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.0.send(request(tx)).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Every equipment, as the loop sees it now.
    pub async fn status(&self) -> Result<Vec<EquipmentStatus>> {
        self.ask(Request::Status).await
    }

    /// A new plan for `equipment` (JSON, see [`control::plan`]); returns
    /// once it is applied and kept (unless it comes from the store).
    pub async fn set_plan(&self, equipment: &str, plan: Value, source: Source) -> Result<()> {
        let (kept, is_kept) = waiting(source);
        self.ask(|done| Request::Plan {
            equipment: equipment.to_owned(),
            plan,
            source,
            kept,
            done,
        })
        .await??;
        until_kept(is_kept).await
    }

    /// Sets `equipment`'s mode, as the household would.
    pub async fn set_mode(&self, equipment: &str, mode: Mode) -> Result<()> {
        self.ask(|done| Request::Mode {
            equipment: equipment.to_owned(),
            mode,
            done,
        })
        .await?
    }

    /// A stimulation (JSON, see [`control::stimulation`]); returns when it
    /// ends (µs), once it is applied (or scheduled) and kept (unless it
    /// comes from the store).
    pub async fn stimulate(&self, body: Value, source: Source) -> Result<i64> {
        let (kept, is_kept) = waiting(source);
        let until = self
            .ask(|done| Request::Stimulate {
                body,
                source,
                kept,
                done,
            })
            .await??;
        until_kept(is_kept).await?;
        Ok(until)
    }

    /// Drives a new equipment from now on.
    pub async fn add_equipment(&self, equipment: EquipmentConfig) -> Result<()> {
        self.ask(|done| Request::Add {
            equipment: Box::new(equipment),
            done,
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loop that accepts every plan and passes its `Kept` on, as the
    /// real one does, to `notes`.
    fn accepting_loop(mut requests: Requests, notes: mpsc::Sender<Option<Kept>>) {
        tokio::spawn(async move {
            while let Some(request) = requests.0.recv().await {
                if let Request::Plan { kept, done, .. } = request {
                    let _ = done.send(Ok(()));
                    notes.send(kept).await.unwrap();
                }
            }
        });
    }

    /// A plan given as the HTTP API does, answered in the background.
    fn api_plan(handle: &Handle) -> tokio::task::JoinHandle<Result<()>> {
        let handle = handle.clone();
        tokio::spawn(async move { handle.set_plan("heater", Value::Null, Source::Api).await })
    }

    #[tokio::test]
    async fn an_api_plan_is_answered_once_kept_and_not_before() {
        let (handle, requests) = handle();
        let (notes, mut noted) = mpsc::channel(4);
        accepting_loop(requests, notes);
        let asked = api_plan(&handle);
        let kept = noted
            .recv()
            .await
            .unwrap()
            .expect("an API plan waits to be kept");
        tokio::task::yield_now().await;
        assert!(!asked.is_finished(), "answered before it was kept");
        kept.done(Ok(()));
        assert_eq!(asked.await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn a_plan_not_kept_is_not_acknowledged() {
        let (handle, requests) = handle();
        let (notes, mut noted) = mpsc::channel(4);
        accepting_loop(requests, notes);
        let asked = api_plan(&handle);
        let kept = noted.recv().await.unwrap().unwrap();
        kept.done(Err("disk full".into()));
        assert_eq!(
            asked.await.unwrap().unwrap_err().to_string(),
            "applied, but could not be kept: disk full"
        );
        // A reader that drops it is no better.
        let asked = api_plan(&handle);
        drop(noted.recv().await.unwrap());
        assert!(matches!(asked.await.unwrap(), Err(Error::NotKept(_))));
    }

    #[tokio::test]
    async fn a_plan_from_the_store_waits_for_nothing() {
        let (handle, requests) = handle();
        let (notes, mut noted) = mpsc::channel(4);
        accepting_loop(requests, notes);
        handle
            .set_plan("heater", Value::Null, Source::Store)
            .await
            .unwrap();
        assert!(noted.recv().await.unwrap().is_none());
    }
}
