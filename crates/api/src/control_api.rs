//! `/api/v1/control/…`: the equipments the node drives, their plans and
//! modes, and stimulations.
//!
//! Access follows the streams each equipment writes (`equipment/E/…`): a
//! caller that may read `equipment/E/state` sees equipment E; one that may
//! write it sets E's plan and mode. Stimulations and new equipments act on
//! many equipments: they need a token over every stream (`*`), write and
//! admin scope respectively, or an admin account.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use control::journal::Source;
use control::settings::EquipmentSettings;
use control_mqtt::Handle;
use serde_json::{Value as Json_, json};
use store::Scope;

use crate::{Api, Caller, Problem};

impl From<control::Error> for Problem {
    fn from(e: control::Error) -> Problem {
        match e {
            control::Error::NoEquipment(_) => Problem::new(StatusCode::NOT_FOUND, e.to_string()),
            control::Error::NameTaken(_) => Problem::new(StatusCode::CONFLICT, e.to_string()),
            control::Error::Stopped => Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            // As a store error is: logged, not shown.
            control::Error::NotKept(_) => Problem::internal(&e),
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

fn json_body(body: &Bytes, what: &str) -> Result<Json_, Problem> {
    serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("{what}: the body is not JSON: {e}")))
}

pub(crate) async fn list(State(api): State<Api>, caller: Caller) -> Result<Json<Json_>, Problem> {
    caller.signed_in()?;
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
    caller: Caller,
) -> Result<Json<Json_>, Problem> {
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
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Json_>), Problem> {
    caller.check_everything(Scope::Admin, "this")?;
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
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    caller.check(Scope::Write, &state_stream(&name), None)?;
    let plan = json_body(&body, "a plan")?;
    // Answered once kept (by the loop's journal, as a plan from MQTT is):
    // an acknowledged plan survives a crash.
    handle(&api)?.set_plan(&name, plan, Source::Api).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn put_mode(
    State(api): State<Api>,
    Path(name): Path<String>,
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    caller.check(Scope::Write, &state_stream(&name), None)?;
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
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    caller.check_everything(Scope::Write, "this")?;
    let body = json_body(&body, "a stimulation")?;
    // Answered once kept, to apply again after a restart.
    handle(&api)?.stimulate(body, Source::Api).await?;
    Ok(StatusCode::ACCEPTED)
}
