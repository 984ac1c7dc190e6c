//! `/api/v1/session`: signing in with an account's password, the session
//! it opens (a cookie, and a CSRF token for the calls that change
//! anything), and signing out.
//!
//! Failed sign-ins are limited per account and per client address, in
//! memory: after [`MAX_FAILURES`] in a minute, sign-ins are refused (429)
//! until the oldest is a minute old. Behind a reverse proxy every client
//! has the proxy's address.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::to_bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use store::{Account, Session};

use crate::caller::{Credentials, SESSION_COOKIE, session_cookie};
use crate::{Api, Problem};

/// Failed sign-ins allowed per account, and per client address, in [`WINDOW`].
pub(crate) const MAX_FAILURES: usize = 5;

/// How long a failed sign-in counts.
const WINDOW: Duration = Duration::from_secs(60);

/// Accounts and addresses whose failures are remembered at most; past
/// that, the one whose last failure is the oldest is forgotten.
const MAX_KEYS: usize = 10_000;

/// Largest sign-in body read, in bytes.
const BODY_LIMIT: usize = 16 * 1024;

/// The recent failed sign-ins of each account and client address.
#[derive(Default)]
pub(crate) struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long until one of `keys` may try again, if one is at its limit.
    fn retry_after(&self, keys: &[String], now: Instant) -> Option<Duration> {
        let mut failures = self.failures();
        keys.iter()
            .filter_map(|key| {
                let times = failures.get_mut(key)?;
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= WINDOW)
                {
                    times.pop_front();
                }
                (times.len() >= MAX_FAILURES)
                    .then(|| times.front().map(|t| WINDOW - now.duration_since(*t)))
                    .flatten()
            })
            .max()
    }

    /// Counts a failed sign-in against each of `keys`.
    fn failed(&self, keys: &[String], now: Instant) {
        let mut failures = self.failures();
        if failures.len() + keys.len() > MAX_KEYS {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
        }
        while failures.len() + keys.len() > MAX_KEYS {
            let oldest = failures
                .iter()
                .min_by_key(|(_, times)| times.back().copied())
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => failures.remove(&key),
                None => break,
            };
        }
        for key in keys {
            let times = failures.entry(key.clone()).or_default();
            times.push_back(now);
            while times.len() > MAX_FAILURES {
                times.pop_front();
            }
        }
    }
}

/// The body of `POST /api/v1/session`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    account: String,
    password: String,
}

/// What the session endpoints answer: the account, and the session's
/// CSRF token.
fn session_json(account: &Account, session: &Session) -> Json_ {
    json!({
        "account": account.name,
        "display_name": account.display_name,
        "role": account.role,
        "csrf": session.csrf,
        "streams": account.streams,
        "consumption_stream": account.consumption_stream,
    })
}

/// The `Set-Cookie` value that sets (`Some(id)`) or clears the cookie.
fn cookie(api: &Api, id: Option<&str>) -> Result<HeaderValue, Problem> {
    let mut value = match id {
        Some(id) => format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/"),
        None => format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    };
    if api.secure_cookies {
        value.push_str("; Secure");
    }
    HeaderValue::from_str(&value).map_err(|e| Problem::internal(&e))
}

fn wrong() -> Problem {
    Problem {
        detail: "wrong account or password".into(),
        ..Problem::unauthorized()
    }
}

pub(crate) async fn sign_in(State(api): State<Api>, request: Request) -> Result<Response, Problem> {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
    let body = to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map_err(|e| Problem::bad_request(format!("the body could not be read: {e}")))?;
    let body: SignIn =
        serde_json::from_slice(&body).map_err(|e| Problem::bad_request(format!("body: {e}")))?;
    let keys = [
        format!("account {}", body.account),
        format!("address {address}"),
    ];
    let now = Instant::now();
    let name = body.account.clone();
    if let Some(wait) = api.logins.retry_after(&keys, now) {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        tracing::warn!(account = %name, %address, "sign-in refused: too many failures");
        let mut response = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "more than {MAX_FAILURES} failed sign-ins in a minute for this account or address: try again in {seconds} s"
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        return Ok(response);
    }
    let opened = api
        .blocking(move |store| {
            let Some(account) = store.verify_password(&body.account, &body.password)? else {
                return Ok(None);
            };
            let (id, session) = store.create_session(&account.name)?;
            Ok(Some((account, id, session)))
        })
        .await?;
    let Some((account, id, session)) = opened else {
        api.logins.failed(&keys, now);
        tracing::info!(account = %name, %address, "sign-in refused: wrong account or password");
        return Err(wrong());
    };
    tracing::info!(account = %account.name, %address, "signed in");
    Ok((
        [(header::SET_COOKIE, cookie(&api, Some(&id))?)],
        Json(session_json(&account, &session)),
    )
        .into_response())
}

pub(crate) async fn show(
    State(api): State<Api>,
    headers: HeaderMap,
) -> Result<Json<Json_>, Problem> {
    let signed_out = || Problem {
        detail: "not signed in, or the session has ended: sign in again".into(),
        ..Problem::unauthorized()
    };
    let id = session_cookie(&headers).ok_or_else(signed_out)?;
    let (account, session) = api
        .blocking(move |store| Ok(store.resolve_session(&id)?))
        .await?
        .ok_or_else(signed_out)?;
    Ok(Json(session_json(&account, &session)))
}

pub(crate) async fn sign_out(
    State(api): State<Api>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let credentials = Credentials::of(&method, &headers)?;
    let Credentials::Session { id, .. } = &credentials else {
        return Err(Problem {
            detail: "not signed in: there is no session cookie to end".into(),
            ..Problem::unauthorized()
        });
    };
    let id = id.clone();
    api.blocking(move |store| {
        // Checks the CSRF token first.
        credentials.resolve(store)?;
        Ok(store.delete_session(&id)?)
    })
    .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, cookie(&api, None)?)],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_limit_each_key_for_a_minute() {
        let limiter = LoginLimiter::default();
        let start = Instant::now();
        let keys = ["account a".to_owned(), "address 1".to_owned()];
        for i in 0..MAX_FAILURES as u64 {
            assert_eq!(limiter.retry_after(&keys, start), None);
            limiter.failed(&keys, start + Duration::from_secs(i));
        }
        let later = start + Duration::from_secs(10);
        assert_eq!(
            limiter.retry_after(&keys, later),
            Some(Duration::from_secs(50))
        );
        let other_account = ["account b".to_owned(), "address 1".to_owned()];
        assert!(
            limiter.retry_after(&other_account, later).is_some(),
            "same address"
        );
        let elsewhere = ["account b".to_owned(), "address 2".to_owned()];
        assert_eq!(limiter.retry_after(&elsewhere, later), None);
        assert_eq!(
            limiter.retry_after(&keys, start + WINDOW),
            None,
            "the first failure is a minute old"
        );
    }

    #[test]
    fn the_limiter_forgets_the_oldest_keys_past_its_bound() {
        let limiter = LoginLimiter::default();
        let start = Instant::now();
        for i in 0..MAX_KEYS + 10 {
            limiter.failed(
                &[format!("address {i}")],
                start + Duration::from_millis(i as u64),
            );
        }
        let kept = limiter.failures();
        assert_eq!(kept.len(), MAX_KEYS);
        assert!(!kept.contains_key("address 0") && kept.contains_key("address 10009"));
    }
}
