//! `/api/v1/accounts`: the accounts people sign in with, for admins (an
//! admin account, or an admin token over every stream).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};
use serde_json::{Value as Json_, json};
use store::{Account, AccountChange, NewAccount, Role, Scope, StreamPattern, format_time};

use crate::{Api, Caller, Problem};

/// An account as the API shows it.
pub(crate) fn account_json(a: &Account) -> Json_ {
    json!({
        "account": a.name,
        "display_name": a.display_name,
        "role": a.role,
        "streams": a.streams,
        "consumption_stream": a.consumption_stream,
        "created": format_time(a.created, &jiff::tz::TimeZone::UTC),
    })
}

/// The body of `POST /api/v1/accounts`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountBody {
    account: Option<String>,
    display_name: Option<String>,
    role: Option<String>,
    password: Option<String>,
    #[serde(default)]
    streams: Vec<String>,
    #[serde(default)]
    consumption_stream: Option<String>,
}

/// `Some` for a field present, even as `null`: tells `null` from absent.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The body of `PATCH /api/v1/accounts/{account}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountPatch {
    display_name: Option<String>,
    role: Option<String>,
    password: Option<String>,
    streams: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    consumption_stream: Option<Option<String>>,
}

fn required(field: &str, value: Option<String>) -> Result<String, Problem> {
    value.ok_or_else(|| Problem::bad_field(field, format!("`{field}` is required")))
}

fn role(text: &str) -> Result<Role, Problem> {
    text.parse()
        .map_err(|e: String| Problem::bad_field("role", e))
}

fn patterns(texts: &[String]) -> Result<Vec<StreamPattern>, Problem> {
    texts
        .iter()
        .map(|t| {
            t.parse()
                .map_err(|e| Problem::bad_field("streams", format!("stream pattern {t:?}: {e}")))
        })
        .collect()
}

fn body<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| Problem::bad_request(format!("body: {e}")))
}

fn admin(caller: &Caller) -> Result<(), Problem> {
    caller.check_everything(Scope::Admin, "managing accounts")
}

fn no_account(name: &str) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, format!("no account named {name:?}"))
}

pub(crate) async fn list(State(api): State<Api>, caller: Caller) -> Result<Json<Json_>, Problem> {
    admin(&caller)?;
    let accounts = api.blocking(|store| Ok(store.accounts()?)).await?;
    Ok(Json(accounts.iter().map(account_json).collect()))
}

pub(crate) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Json_>, Problem> {
    admin(&caller)?;
    let account = api
        .blocking(move |store| store.account(&name)?.ok_or_else(|| no_account(&name)))
        .await?;
    Ok(Json(account_json(&account)))
}

pub(crate) async fn add(
    State(api): State<Api>,
    caller: Caller,
    bytes: axum::body::Bytes,
) -> Result<(StatusCode, Json<Json_>), Problem> {
    admin(&caller)?;
    let b: AccountBody = body(&bytes)?;
    let new = NewAccount {
        name: required("account", b.account)?,
        display_name: required("display_name", b.display_name)?,
        role: role(&required("role", b.role)?)?,
        password: required("password", b.password)?,
        streams: patterns(&b.streams)?,
        consumption_stream: b.consumption_stream,
    };
    let account = api
        .blocking(move |store| Ok(store.add_account(&new)?))
        .await?;
    tracing::info!(account = %account.name, role = %account.role, "account added");
    Ok((StatusCode::CREATED, Json(account_json(&account))))
}

pub(crate) async fn change(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Json<Json_>, Problem> {
    admin(&caller)?;
    let p: AccountPatch = body(&bytes)?;
    let change = AccountChange {
        display_name: p.display_name,
        role: p.role.as_deref().map(role).transpose()?,
        password: p.password,
        streams: p.streams.as_deref().map(patterns).transpose()?,
        consumption_stream: p.consumption_stream,
    };
    let account = api
        .blocking(move |store| Ok(store.update_account(&name, &change)?))
        .await?;
    Ok(Json(account_json(&account)))
}

pub(crate) async fn remove(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    admin(&caller)?;
    api.blocking(move |store| {
        if store.remove_account(&name)? {
            tracing::info!(account = %name, "account removed");
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(no_account(&name))
        }
    })
    .await
}
