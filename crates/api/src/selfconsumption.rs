//! `GET /api/v1/selfconsumption`: how much of a production its consumers
//! use, per interval and in all, and how a collective splits it.
//!
//! The arithmetic is `store`'s pure `selfconsumption` module; this reads
//! the energy of each stream per interval and answers JSON.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::{Value as Json_, json};
use store::{Flows, Key, Store, allocate, format_time, rate};

use crate::energy::{self, Step};
use crate::handlers::{Params, check_readable};
use crate::{Api, Caller, Problem};

/// Reading a self-consumption: read access to every stream it names.
fn may_read(store: &Store, caller: &Caller, streams: &[String]) -> Result<(), Problem> {
    caller.signed_in()?;
    check_readable(store, caller, streams)
}

/// The split key of `key=` and `shares=`, for `consumers` in order.
fn split_key(params: &Params, consumers: &[String]) -> Result<Key, Problem> {
    let shares = params.one("shares")?;
    let key = params.one("key")?.unwrap_or(if shares.is_some() {
        "static"
    } else {
        "proportional"
    });
    match key {
        "proportional" | "equal" if shares.is_some() => Err(Problem::bad_field(
            "shares",
            format!("shares= goes with key=static, not key={key}"),
        )),
        "proportional" => Ok(Key::Proportional),
        "equal" => Ok(Key::Equal),
        "static" => {
            let shares = shares.ok_or_else(|| {
                Problem::bad_field(
                    "shares",
                    "key=static needs shares=STREAM:WEIGHT,… (shares=a:0.5,b:0.5)",
                )
            })?;
            let mut weights = vec![0.0; consumers.len()];
            for part in shares.split(',') {
                // Stream names hold colons: the weight follows the last.
                let (name, weight) = part.rsplit_once(':').ok_or_else(|| {
                    Problem::bad_field("shares", format!("shares: {part:?} is not STREAM:WEIGHT"))
                })?;
                let weight: f64 = weight
                    .parse()
                    .ok()
                    .filter(|w: &f64| w.is_finite() && *w >= 0.0)
                    .ok_or_else(|| {
                        Problem::bad_field(
                            "shares",
                            format!(
                                "shares: the weight of {name} must be a number ≥ 0, not {weight:?}"
                            ),
                        )
                    })?;
                let k = consumers.iter().position(|c| c == name).ok_or_else(|| {
                    Problem::bad_field(
                        "shares",
                        format!("shares: {name} is not one of the consumption streams"),
                    )
                })?;
                weights[k] = weight;
            }
            Ok(Key::Static(weights))
        }
        other => Err(Problem::bad_field(
            "key",
            format!("key={other:?}: give proportional, equal or static"),
        )),
    }
}

fn flows_json(f: &Flows) -> Json_ {
    json!({
        "production": f.production,
        "consumption": f.consumption,
        "direct": f.direct,
        "export": f.export,
        "import": f.import,
    })
}

pub(crate) async fn answer(
    State(api): State<Api>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Json_>, Problem> {
    let params = Params::parse(query);
    let production = params
        .one("production")?
        .ok_or_else(|| Problem::bad_field("production", "`production` is required (a stream)"))?
        .to_owned();
    let consumers = params.all("consumption");
    if consumers.is_empty() {
        return Err(Problem::bad_field(
            "consumption",
            "give at least one consumption stream (consumption=NAME, repeatable)",
        ));
    }
    if let Some((i, c)) = consumers
        .iter()
        .enumerate()
        .find(|(i, c)| consumers[..*i].contains(c))
    {
        return Err(Problem::bad_field(
            "consumption",
            format!("consumption {c} is given twice (the {}th time)", i + 1),
        ));
    }
    let time = |key: &str| {
        params
            .time(key)
            .map_err(|p| Problem::bad_field(key, p.detail))?
            .ok_or_else(|| Problem::bad_field(key, format!("`{key}` is required")))
    };
    let (from, to) = (time("from")?, time("to")?);
    if from >= to {
        return Err(Problem::bad_field("to", "`to` must be after `from`"));
    }
    let tz = params
        .time_zone(&api.store)
        .map_err(|p| Problem::bad_field("tz", p.detail))?;
    let step = match params.one("step")? {
        Some(s) => Step::parse(s)?,
        None => Step::default_for(from, to),
    };
    let key = split_key(&params, &consumers)?;
    api.blocking(move |store| {
        let mut streams = vec![production.clone()];
        streams.extend(consumers.iter().cloned());
        may_read(store, &caller, &streams)?;
        // The flows are computed interval by interval at the finest step
        // (half-hours for a day, hours beyond: the store's hourly rollups),
        // then summed into the steps asked for: a day's or a month's total
        // production set against its total consumption would count the
        // night's use as covered by the sun.
        let fine = step.finest();
        let solar = energy::energy(store, "production", &production, from, to, fine, &tz)?;
        let used = consumers
            .iter()
            .map(|c| energy::energy(store, "consumption", c, from, to, fine, &tz))
            .collect::<Result<Vec<_>, _>>()?;
        let coarse = if step == fine {
            solar.bounds.clone()
        } else {
            energy::bounds(from, to, step, &tz)?
        };
        let steps = coarse.len().saturating_sub(1);
        let mut per_step = vec![Flows::default(); steps];
        let mut totals = Flows::default();
        let mut consumed = vec![0.0; consumers.len()];
        let mut allocated = vec![0.0; consumers.len()];
        let mut at = 0;
        for (i, start) in solar.bounds.iter().take(solar.kwh.len()).enumerate() {
            while at < steps && *start >= coarse[at + 1] {
                at += 1;
            }
            if at == steps {
                break;
            }
            // An interval without data on one side counts as 0 there.
            let each: Vec<f64> = used
                .iter()
                .map(|u| u.kwh.get(i).copied().flatten().unwrap_or(0.0).max(0.0))
                .collect();
            let produced = solar.kwh[i].unwrap_or(0.0);
            let flows = Flows::of(produced, each.iter().sum());
            totals.add(&flows);
            per_step[at].add(&flows);
            for (k, a) in allocate(flows.production, &each, &key).iter().enumerate() {
                consumed[k] += each[k];
                allocated[k] += a;
            }
        }
        let intervals: Vec<Json_> = per_step
            .iter()
            .zip(&coarse)
            .map(|(flows, start)| {
                let mut json = flows_json(flows);
                json["start"] = json!(format_time(*start, &tz));
                json
            })
            .collect();
        let mut totals_json = flows_json(&totals);
        totals_json["self_consumption"] = json!(totals.self_consumption());
        totals_json["self_sufficiency"] = json!(totals.self_sufficiency());
        let consumers_json: Vec<Json_> = consumers
            .iter()
            .enumerate()
            .map(|(k, c)| {
                json!({
                    "stream": c,
                    "consumption": consumed[k],
                    "allocated": allocated[k],
                    "self_sufficiency": rate(allocated[k], consumed[k]),
                })
            })
            .collect();
        Ok(Json(json!({
            "unit": "kWh",
            "tz": tz.iana_name().unwrap_or("UTC"),
            "step": step.name(),
            "computed_by": fine.name(),
            "totals": totals_json,
            "intervals": intervals,
            "consumers": consumers_json,
        })))
    })
    .await
}
