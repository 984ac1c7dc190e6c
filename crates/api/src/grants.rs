//! `/api/v1/grants`: the owners' consents, for admin tokens over every
//! stream (a grant can name any stream).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use store::{NewGrant, Scope, StreamPattern};

use crate::{Api, Caller, Problem};

/// The body of `POST /api/v1/grants`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    to: String,
    streams: String,
    #[serde(default)]
    purpose: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    max_history: Option<String>,
    #[serde(default)]
    min_aggregation: Option<String>,
    #[serde(default)]
    retention: Option<String>,
}

async fn admin(api: &Api, headers: &HeaderMap) -> Result<(), Problem> {
    let caller = Caller::of(api, headers).await?;
    let token = caller.token()?;
    if token.scope < Scope::Admin || token.streams.as_str() != "*" {
        return Err(Problem::forbidden(format!(
            "token {:?} is not an admin token over every stream (*), which grants need",
            token.name
        )));
    }
    Ok(())
}

fn time(field: &str, text: Option<String>) -> Result<Option<i64>, Problem> {
    text.map(|t| store::parse_time(&t).map_err(|e| Problem::bad_request(format!("{field}: {e}"))))
        .transpose()
}

pub(crate) async fn list(
    State(api): State<Api>,
    headers: HeaderMap,
) -> Result<Json<Json_>, Problem> {
    admin(&api, &headers).await?;
    let grants = api.blocking(|store| Ok(store.grants()?)).await?;
    Ok(Json(json!({ "grants": grants })))
}

pub(crate) async fn add(
    State(api): State<Api>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Json_>), Problem> {
    admin(&api, &headers).await?;
    let body: GrantBody =
        serde_json::from_slice(&body).map_err(|e| Problem::bad_request(format!("body: {e}")))?;
    let grant = NewGrant {
        grantee: body.to,
        streams: body
            .streams
            .parse::<StreamPattern>()
            .map_err(|e| Problem::bad_request(format!("streams: {e}")))?,
        purpose: body.purpose,
        from: time("from", body.from)?,
        until: time("until", body.until)?,
        max_history: body.max_history,
        min_aggregation: body.min_aggregation,
        retention: body.retention,
    };
    let grant = api
        .blocking(move |store| Ok(store.add_grant(&grant)?))
        .await?;
    Ok((StatusCode::CREATED, Json(json!(grant))))
}

pub(crate) async fn revoke(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Json_>, Problem> {
    admin(&api, &headers).await?;
    let grant = api
        .blocking(move |store| Ok(store.revoke_grant(id)?))
        .await?;
    Ok(Json(json!(grant)))
}
