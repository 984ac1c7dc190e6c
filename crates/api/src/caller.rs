//! Who is calling: nobody, the holder of a bearer token, or an account
//! signed in with the session cookie; and what each may do.
//!
//! Roles of accounts: an admin may do everything; an operator reads every
//! stream and writes to any; a member reads open streams and their own
//! (owned by their name, or matching one of their patterns) and writes
//! their own. A call authenticated by the cookie that changes anything
//! (not GET or HEAD) must carry the session's `X-CSRF-Token`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use store::{Account, Role, Scope, Store, StreamInfo, Token};

use crate::{Api, Problem};

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "fedwatt_session";

/// The header that carries a session's CSRF token.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// The secret of a request's bearer token, if it has an Authorization
/// header; 401 if that header is not `Bearer <token>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|s| Some(s.trim().to_owned()))
        .ok_or_else(|| Problem {
            detail: "the Authorization header must be `Bearer <token>`".into(),
            ..Problem::unauthorized()
        })
}

/// The session id in a request's cookies, if any.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// Whether two secrets are equal, in a time that does not depend on
/// where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a request presents to say who it is, read before any store call.
pub(crate) enum Credentials {
    /// Nothing.
    None,
    /// A bearer token's secret (it wins over a cookie).
    Bearer(String),
    /// A session cookie; `csrf` is the header's value when the method
    /// needs one.
    Session {
        id: String,
        needs_csrf: bool,
        csrf: Option<String>,
    },
}

impl Credentials {
    /// Reads a request's head.
    pub(crate) fn of(method: &Method, headers: &HeaderMap) -> Result<Credentials, Problem> {
        if let Some(secret) = bearer(headers)? {
            return Ok(Credentials::Bearer(secret));
        }
        Ok(match session_cookie(headers) {
            None => Credentials::None,
            Some(id) => Credentials::Session {
                id,
                needs_csrf: !matches!(*method, Method::GET | Method::HEAD),
                csrf: headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            },
        })
    }

    /// The caller, on a blocking thread: an unknown token or session is
    /// refused (401) rather than taken for no credentials, and a session
    /// call without its CSRF token is refused (403).
    pub(crate) fn resolve(self, store: &Store) -> Result<Caller, Problem> {
        match self {
            Credentials::None => Ok(Caller::Anonymous),
            Credentials::Bearer(secret) => Caller::holder(store, &secret),
            Credentials::Session {
                id,
                needs_csrf,
                csrf,
            } => {
                let (account, session) = store.resolve_session(&id)?.ok_or_else(|| Problem {
                    detail: "the session has ended or is unknown: sign in again".into(),
                    ..Problem::unauthorized()
                })?;
                if needs_csrf
                    && !csrf.is_some_and(|c| same_secret(c.as_bytes(), session.csrf.as_bytes()))
                {
                    return Err(Problem::forbidden("missing or wrong X-CSRF-Token header"));
                }
                Ok(Caller::Account(account))
            }
        }
    }

    /// The caller, looked up on a blocking thread if there is anything to
    /// look up.
    pub(crate) async fn caller(self, api: &Api) -> Result<Caller, Problem> {
        match self {
            Credentials::None => Ok(Caller::Anonymous),
            credentials => api.blocking(move |store| credentials.resolve(store)).await,
        }
    }
}

/// Who is calling: nobody, the holder of a token, or a signed-in account.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    Anonymous,
    Holder(Token),
    Account(Account),
}

impl FromRequestParts<Api> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Caller, Problem> {
        Credentials::of(&parts.method, &parts.headers)?
            .caller(api)
            .await
    }
}

impl Caller {
    /// The holder of the token `secret`, or 401; for a caller already on
    /// a blocking thread.
    pub(crate) fn holder(store: &Store, secret: &str) -> Result<Caller, Problem> {
        store
            .authenticate(secret)?
            .map(Caller::Holder)
            .ok_or_else(|| Problem {
                detail: "unknown or revoked token".into(),
                ..Problem::unauthorized()
            })
    }

    /// 401 for nobody.
    pub(crate) fn signed_in(&self) -> Result<(), Problem> {
        match self {
            Caller::Anonymous => Err(Problem::unauthorized()),
            _ => Ok(()),
        }
    }

    /// The signed-in account, or 401 (nobody) or 403 (a token).
    pub(crate) fn account(&self) -> Result<&Account, Problem> {
        match self {
            Caller::Account(a) => Ok(a),
            Caller::Anonymous => Err(Problem::unauthorized()),
            Caller::Holder(t) => Err(Problem::forbidden(format!(
                "this is for a signed-in account, not token {:?}",
                t.name
            ))),
        }
    }

    /// The name under which what this caller writes is owned.
    pub(crate) fn owner_name(&self) -> Option<&str> {
        match self {
            Caller::Anonymous => None,
            Caller::Holder(t) => Some(&t.name),
            Caller::Account(a) => Some(&a.name),
        }
    }

    /// 401 or 403 unless the caller may do `scope` on every stream: a
    /// token of that scope over `*`, an admin account, or an operator for
    /// reading.
    pub(crate) fn check_everything(&self, scope: Scope, what: &str) -> Result<(), Problem> {
        match self {
            Caller::Anonymous => Err(Problem::unauthorized()),
            Caller::Holder(token) if token.scope >= scope && token.streams.as_str() == "*" => {
                Ok(())
            }
            Caller::Holder(token) => Err(Problem::forbidden(format!(
                "token {:?} needs scope {scope} over every stream (*) for {what}",
                token.name
            ))),
            Caller::Account(a) if a.role == Role::Admin => Ok(()),
            Caller::Account(a) if a.role == Role::Operator && scope == Scope::Read => Ok(()),
            Caller::Account(a) => Err(Problem::forbidden(format!(
                "account {:?} is {} {}; {what} is for an admin",
                a.name,
                if a.role == Role::Operator { "an" } else { "a" },
                a.role
            ))),
        }
    }

    /// Whether this caller may see `stream` (open streams are for everyone).
    pub(crate) fn may_read(&self, stream: &StreamInfo) -> bool {
        stream.open
            || match self {
                Caller::Anonymous => false,
                Caller::Holder(t) => t.allows(Scope::Read, &stream.name),
                Caller::Account(a) => {
                    a.role != Role::Member || a.owns(&stream.name, stream.owner.as_deref())
                }
            }
    }

    /// Whether this caller may write to the stream `name` (looked up for a
    /// member, whose own streams are known by their owner).
    pub(crate) fn may_write(&self, store: &Store, name: &str) -> Result<bool, Problem> {
        Ok(match self {
            Caller::Anonymous => false,
            Caller::Holder(t) => t.allows(Scope::Write, name),
            Caller::Account(a) if a.role != Role::Member => true,
            Caller::Account(a) => {
                a.owns(name, None)
                    || store
                        .stream(name)?
                        .is_some_and(|s| s.owner.as_deref() == Some(a.name.as_str()))
            }
        })
    }

    /// 401 or 403 unless the caller may use the stream named `name` with
    /// `scope`; `stream` is the stream when it exists.
    pub(crate) fn check(
        &self,
        scope: Scope,
        name: &str,
        stream: Option<&StreamInfo>,
    ) -> Result<(), Problem> {
        if scope == Scope::Read && stream.is_some_and(|s| s.open) {
            return Ok(());
        }
        match self {
            Caller::Anonymous => Err(Problem::unauthorized()),
            Caller::Holder(token) if token.allows(scope, name) => Ok(()),
            Caller::Holder(token) if token.scope < scope => Err(Problem::forbidden(format!(
                "token {:?} has scope {}, this needs {scope}",
                token.name, token.scope
            ))),
            Caller::Holder(token) => Err(Problem::forbidden(format!(
                "token {:?} is limited to streams {}, not {name}",
                token.name,
                token.streams.as_str()
            ))),
            Caller::Account(a) => match (a.role, scope) {
                (Role::Admin, _) | (Role::Operator, Scope::Read | Scope::Write) => Ok(()),
                (_, Scope::Admin) => Err(Problem::forbidden(format!(
                    "account {:?} is not an admin, which this needs",
                    a.name
                ))),
                (_, _) if a.owns(name, stream.and_then(|s| s.owner.as_deref())) => Ok(()),
                (_, _) => Err(Problem::forbidden(format!(
                    "account {:?} may not use stream {name}, which is not theirs",
                    a.name
                ))),
            },
        }
    }
}
