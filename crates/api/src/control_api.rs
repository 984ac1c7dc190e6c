//! `/api/v1/control/…`: the equipments the node drives, their plans and
//! modes, and stimulations.
//!
//! Access follows the streams each equipment writes (`equipment/E/…`): a
//! token that may read `equipment/E/state` sees equipment E; one that may
//! write it sets E's plan and mode. Stimulations and new equipments act on
//! many equipments: they need a token over every stream (`*`), write and
//! admin scope respectively.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use control::runtime::{Handle, Source};
use control::settings::EquipmentSettings;
use serde_json::{Value as Json_, json};
use store::{Scope, Time};

use crate::{Api, Caller, Problem};

impl From<control::Error> for Problem {
    fn from(e: control::Error) -> Problem {
        match e {
            control::Error::NoEquipment(_) => Problem::new(StatusCode::NOT_FOUND, e.to_string()),
            control::Error::NameTaken(_) => Problem::new(StatusCode::CONFLICT, e.to_string()),
            control::Error::Stopped => Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            control::Error::Invalid(_) | control::Error::Message { .. } => {
                Problem::bad_request(e.to_string())
            }
        }
    }
}

/// The stream that stands for equipment `name` in token checks.
fn state_stream(name: &str) -> String {
    format!("equipment/{name}/state")
}

fn handle(api: &Api) -> Result<&Handle, Problem> {
    api.control.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "this node drives no device: its [control] section names no broker",
        )
    })
}

/// A token with `scope` over every stream, or 401/403.
async fn over_everything(api: &Api, headers: &HeaderMap, scope: Scope) -> Result<(), Problem> {
    let caller = Caller::of(api, headers).await?;
    let token = caller.token()?;
    if token.scope < scope || token.streams.as_str() != "*" {
        return Err(Problem::forbidden(format!(
            "token {:?} needs scope {scope} over every stream (*) for this",
            token.name
        )));
    }
    Ok(())
}

/// 401/403 unless the caller may drive equipment `name` (write on its
/// state stream).
async fn may_drive(api: &Api, headers: &HeaderMap, name: &str) -> Result<(), Problem> {
    Caller::of(api, headers)
        .await?
        .check(Scope::Write, &state_stream(name), None)
}

fn json_body(body: &Bytes, what: &str) -> Result<Json_, Problem> {
    serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("{what}: the body is not JSON: {e}")))
}

pub(crate) async fn list(
    State(api): State<Api>,
    headers: HeaderMap,
) -> Result<Json<Json_>, Problem> {
    let caller = Caller::of(&api, &headers).await?;
    caller.token()?;
    let equipments: Vec<Json_> = handle(&api)?
        .status()
        .await?
        .iter()
        .filter(|e| {
            caller
                .check(Scope::Read, &state_stream(&e.name), None)
                .is_ok()
        })
        .map(|e| e.to_json())
        .collect();
    Ok(Json(json!({ "equipments": equipments })))
}

pub(crate) async fn show(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Json_>, Problem> {
    let caller = Caller::of(&api, &headers).await?;
    caller.check(Scope::Read, &state_stream(&name), None)?;
    handle(&api)?
        .status()
        .await?
        .into_iter()
        .find(|e| e.name == name)
        .map(|e| Json(e.to_json()))
        .ok_or_else(|| control::Error::NoEquipment(name).into())
}

pub(crate) async fn add(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Json_>), Problem> {
    over_everything(&api, &headers, Scope::Admin).await?;
    let control = handle(&api)?.clone();
    let body = json_body(&body, "an equipment")?;
    let settings: EquipmentSettings = serde_json::from_value(body.clone())
        .map_err(|e| Problem::bad_request(format!("an equipment: {e}")))?;
    let config = settings.to_config()?;
    let name = settings.name.clone();
    // The loop refuses a name it drives already (from the configuration
    // file too); then the store keeps it for the next start.
    control.add_equipment(config).await?;
    let stored = name.clone();
    api.blocking(move |store| Ok(store.add_equipment(&stored, &body)?))
        .await?;
    tracing::info!("control: equipment {name} added over the API");
    let status = control.status().await?;
    let added = status.iter().find(|e| e.name == name).map(|e| e.to_json());
    Ok((StatusCode::CREATED, Json(added.unwrap_or(Json_::Null))))
}

pub(crate) async fn put_plan(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    may_drive(&api, &headers, &name).await?;
    let plan = json_body(&body, "a plan")?;
    handle(&api)?
        .set_plan(&name, plan.clone(), Source::Api)
        .await?;
    // Kept before the answer: an acknowledged plan survives a crash.
    api.blocking(move |store| {
        Ok(store.save_plan(&name, &plan, Source::Api.name(), Time::now())?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn put_mode(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    may_drive(&api, &headers, &name).await?;
    let body = json_body(&body, "a mode")?;
    let mode = match body.get("mode").and_then(Json_::as_str) {
        Some(mode) => mode.parse()?,
        None => {
            return Err(Problem::bad_request(
                "a mode: expected {\"mode\": \"manual\"} (or piloted, not-piloted, disabled)",
            ));
        }
    };
    handle(&api)?.set_mode(&name, mode).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn stimulate(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    over_everything(&api, &headers, Scope::Write).await?;
    let body = json_body(&body, "a stimulation")?;
    let until = handle(&api)?.stimulate(body.clone(), Source::Api).await?;
    // Kept before the answer, to apply again after a restart.
    api.blocking(move |store| {
        Ok(store.save_stimulation(
            &body,
            Source::Api.name(),
            Time::now(),
            Time::from_micros(until),
        )?)
    })
    .await?;
    Ok(StatusCode::ACCEPTED)
}
