//! `/api/v1/grants`: the owners' consents, for admin tokens over every
//! stream and admin accounts (a grant can name any stream); an account
//! may revoke a grant over its own streams only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use store::{Account, Grant, NewGrant, Role, Scope, StreamInfo, StreamPattern};

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

/// 401 or 403 unless the caller is an admin token over every stream, or
/// an admin account.
fn admin(caller: &Caller) -> Result<(), Problem> {
    match caller {
        Caller::Holder(token) if token.scope < Scope::Admin || token.streams.as_str() != "*" => {
            Err(Problem::forbidden(format!(
                "token {:?} is not an admin token over every stream (*), which grants need",
                token.name
            )))
        }
        _ => caller.check_everything(Scope::Admin, "grants"),
    }
}

fn time(field: &str, text: Option<String>) -> Result<Option<i64>, Problem> {
    text.map(|t| store::parse_time(&t).map_err(|e| Problem::bad_request(format!("{field}: {e}"))))
        .transpose()
}

pub(crate) async fn list(State(api): State<Api>, caller: Caller) -> Result<Json<Json_>, Problem> {
    admin(&caller)?;
    let grants = api.blocking(|store| Ok(store.grants()?)).await?;
    Ok(Json(json!({ "grants": grants })))
}

pub(crate) async fn add(
    State(api): State<Api>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Json_>), Problem> {
    admin(&caller)?;
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

/// The existing streams a grant covers.
pub(crate) fn covered<'a>(grant: &Grant, streams: &'a [StreamInfo]) -> Vec<&'a StreamInfo> {
    streams
        .iter()
        .filter(|s| grant.streams.matches(&s.name))
        .collect()
}

/// Whether `account` owns every stream `grant` covers, and it covers one.
pub(crate) fn owns_all(account: &Account, grant: &Grant, streams: &[StreamInfo]) -> bool {
    let covered = covered(grant, streams);
    !covered.is_empty()
        && covered
            .iter()
            .all(|s| account.owns(&s.name, s.owner.as_deref()))
}

/// Revokes a grant: for admins, and for a signed-in account that owns
/// every stream the grant covers (at least one).
pub(crate) async fn revoke(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Json_>, Problem> {
    let owner = match &caller {
        Caller::Account(a) if a.role != Role::Admin => Some(a.clone()),
        _ => None,
    };
    if owner.is_none() {
        admin(&caller)?;
    }
    let grant = api
        .blocking(move |store| {
            if let Some(account) = owner {
                let grant = store
                    .grants()?
                    .into_iter()
                    .find(|g| g.id == id)
                    .ok_or_else(|| {
                        Problem::new(StatusCode::NOT_FOUND, format!("there is no grant {id}"))
                    })?;
                if !owns_all(&account, &grant, &store.streams(None)?) {
                    return Err(Problem::forbidden(format!(
                        "grant {id} covers streams that are not account {:?}'s: only an admin may revoke it",
                        account.name
                    )));
                }
            }
            Ok(store.revoke_grant(id)?)
        })
        .await?;
    Ok(Json(json!(grant)))
}
