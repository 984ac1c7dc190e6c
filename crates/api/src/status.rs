//! `GET /api/v1/status`: the node at a glance, for its operator — what
//! `/healthz` says, its peers, the outbox, the devices it drives and the
//! last exchanges of the audit trail.
//!
//! A peer's `state` is what the store knows of it, strongest first:
//! `subscribed` (it receives pushes), `granted` (an active grant, no
//! subscription), `receiving` (this node holds streams from it), `revoked`
//! (only revoked or expired grants), `seen` (only named in the audit
//! trail). Whether the XMPP session is up is in `health.federation`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use control::model::Measured;
use serde_json::{Value as Json_, json};
use store::{Scope, Store, Time, TimeZone, format_time};

use crate::{Api, Caller, Problem};

/// Audit entries the status shows.
const EXCHANGES: usize = 20;

/// What the status says of the node itself.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    name: String,
    started: i64,
}

impl Identity {
    /// The node named `name`, started now.
    pub(crate) fn new(name: String) -> Identity {
        Identity {
            name,
            started: Time::now().as_micros(),
        }
    }
}

/// The node's status: an admin, an operator, or a read token over every
/// stream, since it names the streams of every exchange.
fn may_read(caller: &Caller) -> Result<(), Problem> {
    caller.check_everything(Scope::Read, "the node's status")
}

/// The peers the store knows, with their state and last exchange.
fn peers(store: &Store, utc: &TimeZone) -> Result<Vec<Json_>, Problem> {
    #[derive(Default)]
    struct Peer {
        subscribed: bool,
        granted: bool,
        receiving: bool,
        revoked: bool,
        last: Option<i64>,
    }
    let now = Time::now().as_micros();
    let mut peers: BTreeMap<String, Peer> = BTreeMap::new();
    for grant in store.grants()? {
        let peer = peers.entry(grant.grantee.clone()).or_default();
        if grant.is_active(now) {
            peer.granted = true;
        } else {
            peer.revoked = true;
        }
    }
    for s in store.subscriptions()? {
        peers.entry(s.peer).or_default().subscribed = true;
    }
    for s in store.streams(None)? {
        if let Some(origin) = s.origin {
            peers.entry(origin).or_default().receiving = true;
        }
    }
    for (jid, last) in store.audit_peers()? {
        peers.entry(jid).or_default().last = Some(last);
    }
    Ok(peers
        .into_iter()
        .map(|(jid, p)| {
            let state = if p.subscribed {
                "subscribed"
            } else if p.granted {
                "granted"
            } else if p.receiving {
                "receiving"
            } else if p.revoked {
                "revoked"
            } else {
                "seen"
            };
            json!({
                "jid": jid,
                "state": state,
                "last_exchange": p.last.map(|t| format_time(t, utc)),
            })
        })
        .collect())
}

/// The equipments the control loop drives, with their devices' state.
async fn control(api: &Api) -> Json_ {
    let Some(handle) = &api.control else {
        return Json_::Null;
    };
    let utc = TimeZone::UTC;
    let equipments = match handle.status().await {
        Ok(equipments) => equipments,
        // The status still answers when the control loop does not: it
        // says so in place of the equipments.
        Err(e) => return json!({ "equipments": [], "error": e.to_string() }),
    };
    let equipments: Vec<Json_> = equipments
        .iter()
        .map(|e| {
            let devices: Vec<Json_> = e
                .devices
                .iter()
                .map(|d| {
                    json!({
                        "name": format!("{}/{}", e.name, d.part.name()),
                        "online": matches!(d.measured, Measured::On | Measured::Off),
                        "measured": d.measured.name(),
                        "since": format_time(d.since, &utc),
                        "power": d.power,
                        "error": (d.measured == Measured::CommunicationError)
                            .then_some("the device does not answer (offline, or an order went unconfirmed)"),
                    })
                })
                .collect();
            json!({
                "name": e.name,
                "kind": e.kind.name(),
                "mode": e.mode.name(),
                "state": e.state.name(),
                "devices": devices,
            })
        })
        .collect();
    json!({ "equipments": equipments })
}

pub(crate) async fn answer(State(api): State<Api>, caller: Caller) -> Result<Json<Json_>, Problem> {
    may_read(&caller)?;
    let health = crate::handlers::health(&api).await?;
    let control = control(&api).await;
    let identity = api.identity.clone();
    api.blocking(move |store| {
        let utc = TimeZone::UTC;
        let exchanges: Vec<Json_> = store
            .audit_entries_before(i64::MAX, EXCHANGES)?
            .into_iter()
            .map(|e| {
                json!({
                    "seq": e.seq,
                    "time": format_time(e.time, &utc),
                    "kind": e.kind,
                    "peer": e.peer,
                    "detail": serde_json::from_str::<Json_>(&e.detail).unwrap_or(Json_::String(e.detail)),
                })
            })
            .collect();
        Ok(Json(json!({
            "node": {
                "name": identity.name,
                "version": env!("CARGO_PKG_VERSION"),
                "started": format_time(identity.started, &utc),
            },
            "health": health,
            "peers": peers(store, &utc)?,
            "outbox": { "backlog": store.outbox_len()? },
            "control": control,
            "exchanges": exchanges,
        })))
    })
    .await
}
