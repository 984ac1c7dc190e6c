//! `/api/v1/projects/…`: cooperative projects, their investors, and what
//! an investor's shares produce.
//!
//! Who may do what is decided by one small function per route (`may_…`):
//! an admin (or an admin token over every stream) manages projects and
//! investors; an operator (or a read token over every stream) reads them
//! all; a member sees the projects they invested in, and their own
//! summary. Investors are account names.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use jiff::civil::Date;
use serde_json::{Map, Value as Json_, json};
use store::{Project, Role, Scope, Store, Time, TimeZone, check_account, format_time, regroup};

use crate::energy::{self, Step};
use crate::handlers::{Params, check_readable};
use crate::{Api, Caller, Problem};

// Who may do what: one function per route.

/// Whether the caller sees every project: a read token over every stream,
/// an admin or an operator. A member sees the projects they invested in.
fn sees_every_project(caller: &Caller) -> Result<bool, Problem> {
    match caller {
        Caller::Account(a) if a.role == Role::Member => Ok(false),
        _ => caller
            .check_everything(Scope::Read, "every project")
            .map(|()| true),
    }
}

/// Whether the caller may see `project`: 401, 403, or 404 for a member
/// who holds none of its shares (they do not learn it exists).
fn may_see(store: &Store, caller: &Caller, project: &str) -> Result<(), Problem> {
    if sees_every_project(caller)? {
        return Ok(());
    }
    let account = caller.account()?;
    if store.shares_of(project, &account.name)? > 0 {
        Ok(())
    } else {
        Err(no_project(project))
    }
}

/// Adding, changing and removing projects and investors: an admin.
fn may_manage(caller: &Caller) -> Result<(), Problem> {
    caller.check_everything(Scope::Admin, "managing projects and investors")
}

/// A project's investors: an admin or an operator.
fn may_list_investors(caller: &Caller) -> Result<(), Problem> {
    caller.check_everything(Scope::Read, "a project's investors")
}

/// The summary of `account` (the caller's own when `None`), and the
/// consumption stream it sets beside the production. An admin, an
/// operator or a token over every stream may ask for any account; a member
/// only for themself, in a project they invested in. The plant's
/// production is shown as the investor's share of it, so an investor needs
/// no access to the plant's stream itself; the consumption stream must be
/// readable by the caller. Returns the account and its consumption stream.
fn may_summarise(
    store: &Store,
    caller: &Caller,
    account: Option<&str>,
    project: &Project,
    consumption: Option<&str>,
) -> Result<(String, Option<String>), Problem> {
    let account = match (caller, account) {
        (Caller::Account(me), None) => me.name.clone(),
        (_, Some(named)) => named.to_owned(),
        (_, None) => {
            return Err(Problem::bad_field(
                "account",
                "`account` is required: a token holds no account of its own",
            ));
        }
    };
    if let Caller::Account(me) = caller
        && me.role == Role::Member
    {
        if me.name != account {
            return Err(Problem::forbidden(format!(
                "account {:?} may see only its own summary, not {account:?}'s",
                me.name
            )));
        }
        may_see(store, caller, &project.id)?;
    } else {
        caller.check_everything(Scope::Read, "an investor's summary")?;
    }
    let consumption = match consumption {
        Some(stream) => Some(stream.to_owned()),
        None => store.account(&account)?.and_then(|a| a.consumption_stream),
    };
    if let Some(stream) = &consumption {
        check_readable(store, caller, std::slice::from_ref(stream))?;
    }
    Ok((account, consumption))
}

fn no_project(id: &str) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, format!("no project {id:?}"))
}

/// The body as a JSON object, or 400.
fn object(body: &Bytes) -> Result<Map<String, Json_>, Problem> {
    match serde_json::from_slice(body) {
        Ok(Json_::Object(fields)) => Ok(fields),
        Ok(_) => Err(Problem::bad_request("the body must be a JSON object")),
        Err(e) => Err(Problem::bad_request(format!("the body is not JSON: {e}"))),
    }
}

fn text(field: &str, value: &Json_) -> Result<String, Problem> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Problem::bad_field(field, format!("{field} must be a string")))
}

fn number(field: &str, value: &Json_) -> Result<f64, Problem> {
    value
        .as_f64()
        .ok_or_else(|| Problem::bad_field(field, format!("{field} must be a number")))
}

fn whole(field: &str, value: &Json_) -> Result<u64, Problem> {
    value
        .as_u64()
        .filter(|n| *n > 0)
        .ok_or_else(|| Problem::bad_field(field, format!("{field} must be a whole number above 0")))
}

/// Sets on `project` the fields of `body`, each checked for its type; the
/// project as a whole is checked by the store.
fn apply(project: &mut Project, body: &Map<String, Json_>) -> Result<(), Problem> {
    for (field, value) in body {
        let f = field.as_str();
        match f {
            "id" => project.id = text(f, value)?,
            "title" => project.title = text(f, value)?,
            "description" => project.description = text(f, value)?,
            "currency" => project.currency = text(f, value)?,
            "production_stream" => project.production_stream = text(f, value)?,
            "commissioned" => project.commissioned = text(f, value)?,
            "total_shares" => project.total_shares = whole(f, value)?,
            "share_price" => project.share_price = number(f, value)?,
            "panel_area_m2" => project.panel_area_m2 = number(f, value)?,
            "maintenance_budget" => project.maintenance_budget = number(f, value)?,
            _ => {
                return Err(Problem::bad_field(
                    f,
                    format!(
                        "unknown field {f:?}: a project has id, title, description, total_shares, share_price, currency, panel_area_m2, production_stream, maintenance_budget, commissioned"
                    ),
                ));
            }
        }
    }
    Ok(())
}

pub(crate) async fn list(State(api): State<Api>, caller: Caller) -> Result<Json<Json_>, Problem> {
    let projects = api
        .blocking(move |store| {
            let every = sees_every_project(&caller)?;
            let mut projects = store.projects()?;
            if !every {
                let me = caller.account()?.name.clone();
                let mut mine = Vec::with_capacity(projects.len());
                for project in projects {
                    if store.shares_of(&project.id, &me)? > 0 {
                        mine.push(project);
                    }
                }
                projects = mine;
            }
            Ok(projects)
        })
        .await?;
    Ok(Json(json!(projects)))
}

pub(crate) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Json_>, Problem> {
    let project = api
        .blocking(move |store| {
            may_see(store, &caller, &id)?;
            store.project(&id)?.ok_or_else(|| no_project(&id))
        })
        .await?;
    Ok(Json(json!(project)))
}

pub(crate) async fn add(
    State(api): State<Api>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Json_>), Problem> {
    may_manage(&caller)?;
    let body = object(&body)?;
    for required in [
        "id",
        "title",
        "total_shares",
        "share_price",
        "currency",
        "panel_area_m2",
        "production_stream",
        "commissioned",
    ] {
        if !body.contains_key(required) {
            return Err(Problem::bad_field(
                required,
                format!("{required} is required"),
            ));
        }
    }
    let mut project = Project {
        id: String::new(),
        title: String::new(),
        description: String::new(),
        total_shares: 0,
        share_price: 0.0,
        currency: String::new(),
        panel_area_m2: 0.0,
        production_stream: String::new(),
        maintenance_budget: 0.0,
        commissioned: String::new(),
    };
    apply(&mut project, &body)?;
    let added = api
        .blocking(move |store| Ok(store.add_project(&project)?))
        .await?;
    Ok((StatusCode::CREATED, Json(json!(added))))
}

pub(crate) async fn patch(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Json_>, Problem> {
    may_manage(&caller)?;
    let body = object(&body)?;
    if body
        .get("id")
        .is_some_and(|v| v.as_str() != Some(id.as_str()))
    {
        return Err(Problem::bad_field("id", "a project's id cannot change"));
    }
    let updated = api
        .blocking(move |store| {
            let mut project = store.project(&id)?.ok_or_else(|| no_project(&id))?;
            apply(&mut project, &body)?;
            Ok(store.update_project(&project)?)
        })
        .await?;
    Ok(Json(json!(updated)))
}

pub(crate) async fn remove(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    may_manage(&caller)?;
    api.blocking(move |store| {
        if store.remove_project(&id)? {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(no_project(&id))
        }
    })
    .await
}

/// An investor as the API shows it.
fn investor_json(account: &str, shares: u64) -> Json_ {
    // accounts: the account's display name, once accounts exist; its name
    // until then.
    json!({ "account": account, "display_name": account, "shares": shares })
}

pub(crate) async fn investors(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Json_>, Problem> {
    may_list_investors(&caller)?;
    let investments = api
        .blocking(move |store| Ok(store.investments(&id)?))
        .await?;
    let list: Vec<Json_> = investments
        .iter()
        .map(|i| investor_json(&i.account, i.shares))
        .collect();
    Ok(Json(json!(list)))
}

pub(crate) async fn put_investor(
    State(api): State<Api>,
    caller: Caller,
    Path((id, account)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Json_>, Problem> {
    may_manage(&caller)?;
    let body = object(&body)?;
    if let Some(unknown) = body.keys().find(|k| *k != "shares") {
        return Err(Problem::bad_field(
            unknown,
            format!("unknown field {unknown:?}: give {{\"shares\": N}}"),
        ));
    }
    let shares = whole(
        "shares",
        body.get("shares")
            .ok_or_else(|| Problem::bad_field("shares", "shares is required"))?,
    )?;
    let investment = api
        .blocking(move |store| Ok(store.set_investment(&id, &account, shares)?))
        .await?;
    Ok(Json(investor_json(&investment.account, investment.shares)))
}

pub(crate) async fn remove_investor(
    State(api): State<Api>,
    caller: Caller,
    Path((id, account)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    may_manage(&caller)?;
    api.blocking(move |store| {
        store.project(&id)?.ok_or_else(|| no_project(&id))?;
        if store.remove_investment(&id, &account)? {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(Problem::new(
                StatusCode::NOT_FOUND,
                format!("{account:?} holds no shares in project {id:?}"),
            ))
        }
    })
    .await
}

/// The energy of each interval, as `[{"start","kwh"}]`.
fn intervals_json(bounds: &[i64], kwh: &[Option<f64>], tz: &TimeZone) -> Json_ {
    json!(
        bounds
            .iter()
            .zip(kwh)
            .map(|(start, kwh)| json!({ "start": format_time(*start, tz), "kwh": kwh }))
            .collect::<Vec<_>>()
    )
}

/// Days, months and the year of an energy series given per day.
struct Year {
    days: Vec<Option<f64>>,
    months: Vec<Option<f64>>,
    total: f64,
}

impl Year {
    fn of(days: Vec<Option<f64>>, day_bounds: &[i64], month_bounds: &[i64]) -> Year {
        let months = regroup(day_bounds, &days, month_bounds);
        let total = days.iter().flatten().sum();
        Year {
            days,
            months,
            total,
        }
    }

    fn to_json(&self, day_bounds: &[i64], month_bounds: &[i64], tz: &TimeZone) -> Json_ {
        json!({
            "year": self.total,
            "months": intervals_json(month_bounds, &self.months, tz),
            "days": intervals_json(day_bounds, &self.days, tz),
        })
    }
}

/// The first instant of `year` in `tz` (µs).
fn start_of_year(year: i16, tz: &TimeZone) -> Result<Time, Problem> {
    let bad = || Problem::bad_field("year", format!("year={year}: out of range"));
    let date = Date::new(year, 1, 1).map_err(|_| bad())?;
    let start = date
        .to_zoned(tz.clone())
        .and_then(|z| z.start_of_day())
        .map_err(|_| bad())?;
    Ok(Time::from_micros(start.timestamp().as_microsecond()))
}

pub(crate) async fn summary(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Json_>, Problem> {
    let params = Params::parse(query);
    let tz = params
        .time_zone(&api.store)
        .map_err(|p| Problem::bad_field("tz", p.detail))?;
    let year: i16 = match params.one("year")? {
        Some(y) => y
            .parse()
            .ok()
            .filter(|y| (1970..=9998).contains(y))
            .ok_or_else(|| Problem::bad_field("year", format!("year={y:?}: give a year, 2026")))?,
        None => jiff::Timestamp::now().to_zoned(tz.clone()).year(),
    };
    let account = params.one("account")?.map(str::to_owned);
    if let Some(account) = &account {
        check_account(account)?;
    }
    // None: the account's own consumption stream, if it has one.
    let consumption = params.one("consumption")?.map(str::to_owned);
    let from = start_of_year(year, &tz)?;
    let to = start_of_year(year + 1, &tz)?;
    api.blocking(move |store| {
        let project = store.project(&id)?.ok_or_else(|| no_project(&id))?;
        let (account, consumption) = may_summarise(
            store,
            &caller,
            account.as_deref(),
            &project,
            consumption.as_deref(),
        )?;
        let shares = store.shares_of(&id, &account)?;
        let fraction = shares as f64 / project.total_shares as f64;
        let days = energy::bounds(from, to, Step::Day, &tz)?;
        let months = energy::bounds(from, to, Step::Month, &tz)?;
        // Hourly (the store's rollups), then summed into days and months:
        // the covered part is counted hour by hour, so that a night's
        // consumption is never covered by the day's production.
        let hours = energy::bounds(from, to, Step::Hour, &tz)?;
        let plant = if store.stream(&project.production_stream)?.is_some() {
            energy::energy(
                store,
                "production_stream",
                &project.production_stream,
                from,
                to,
                Step::Hour,
                &tz,
            )?
        } else {
            energy::Series {
                kwh: vec![None; hours.len() - 1],
                bounds: hours.clone(),
            }
        };
        let share_hours: Vec<Option<f64>> =
            plant.kwh.iter().map(|k| k.map(|k| k * fraction)).collect();
        let share = regroup(&plant.bounds, &share_hours, &days);
        let production = Year::of(share, &days, &months);
        let (consumption_json, covered) = match &consumption {
            None => (Json_::Null, Json_::Null),
            Some(stream) => {
                let used_hours =
                    energy::energy(store, "consumption", stream, from, to, Step::Hour, &tz)?;
                let covered_hours: Vec<Option<f64>> = share_hours
                    .iter()
                    .zip(&used_hours.kwh)
                    .map(|(p, c)| Some(p.unwrap_or(0.0).min(c.unwrap_or(0.0)).max(0.0)))
                    .collect();
                let used = regroup(&used_hours.bounds, &used_hours.kwh, &days);
                let used = Year::of(used, &days, &months);
                let mut json = used.to_json(&days, &months, &tz);
                json["stream"] = json!(stream);
                let covered_days = regroup(&used_hours.bounds, &covered_hours, &days);
                let covered_months = regroup(&days, &covered_days, &months);
                let month_rates: Vec<Option<f64>> = covered_months
                    .iter()
                    .zip(&used.months)
                    .map(|(c, u)| store::rate(c.unwrap_or(0.0), u.unwrap_or(0.0)))
                    .collect();
                let covered_year: f64 = covered_days.iter().flatten().sum();
                let covered = json!({
                    "year": store::rate(covered_year, used.total),
                    "months": month_rates,
                });
                (json, covered)
            }
        };
        Ok(Json(json!({
            "project": project,
            "account": account,
            "shares": shares,
            "fraction": fraction,
            "invested": shares as f64 * project.share_price,
            "panel_area_m2": project.panel_area_m2 * fraction,
            "year": year,
            "tz": tz.iana_name().unwrap_or("UTC"),
            "unit": "kWh",
            "production": production.to_json(&days, &months, &tz),
            "consumption": consumption_json,
            "covered": covered,
        })))
    })
    .await
}
