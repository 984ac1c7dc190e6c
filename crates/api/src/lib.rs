//! fedwatt's HTTP API under `/api/v1`: ingest SenML, list streams, read
//! records, calendar aggregates and profiles; `/healthz`, `/metrics` and the
//! OpenAPI document.
//!
//! Every call needs a bearer token, except reads of streams published as
//! open. Errors are RFC 9457 problem details. The store is synchronous: its
//! calls run on tokio's blocking threads, never on the runtime's.
//!
//! Every other path serves the web UI embedded in the binary (`ui`).
//!
//! What it does not do: TLS (put the node behind a reverse proxy).

mod control_api;
mod grants;
mod handlers;
mod metrics;
mod problem;
mod records;
mod server;
mod ui;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use node::StatusBoard;
use store::{Scope, Store, StreamInfo, Token};

pub use metrics::Metrics;
pub use problem::Problem;
pub use server::{Http, HttpSettings};
pub use ui::built as ui_built;

/// What the API needs to run.
#[derive(Clone)]
pub struct Api {
    store: Store,
    metrics: Arc<Metrics>,
    body_limit: usize,
    status: StatusBoard,
    control: Option<control_mqtt::Handle>,
}

impl Api {
    /// An API over `store`, refusing bodies over `body_limit` bytes.
    pub fn new(store: Store, body_limit: usize) -> Api {
        Api {
            store,
            metrics: Arc::new(Metrics::default()),
            body_limit,
            status: StatusBoard::default(),
            control: None,
        }
    }

    /// Reports what the node's components put on `status` in `/healthz`
    /// and `/metrics`.
    pub fn with_status(mut self, status: StatusBoard) -> Api {
        self.status = status;
        self
    }

    /// Serves `/api/v1/control/…` through the control loop's handle.
    pub fn with_control(mut self, control: Option<control_mqtt::Handle>) -> Api {
        self.control = control;
        self
    }

    /// The routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/api/v1/data", post(handlers::post_data))
            .route("/api/v1/streams", get(handlers::list_streams))
            .route(
                "/api/v1/streams/{*name}",
                get(handlers::get_stream).patch(handlers::patch_stream),
            )
            .route("/api/v1/records", get(records::records))
            .route("/api/v1/aggregate", get(handlers::aggregate))
            .route("/api/v1/profile", get(handlers::profile))
            .route("/api/v1/grants", get(grants::list).post(grants::add))
            .route("/api/v1/grants/{id}", axum::routing::delete(grants::revoke))
            .route(
                "/api/v1/control/equipments",
                get(control_api::list).post(control_api::add),
            )
            .route("/api/v1/control/equipments/{name}", get(control_api::show))
            .route(
                "/api/v1/control/equipments/{name}/plan",
                axum::routing::put(control_api::put_plan),
            )
            .route(
                "/api/v1/control/equipments/{name}/mode",
                axum::routing::put(control_api::put_mode),
            )
            .route("/api/v1/control/stimulations", post(control_api::stimulate))
            .route("/api/v1/openapi.json", get(handlers::openapi))
            .route("/healthz", get(handlers::healthz))
            .route("/metrics", get(handlers::metrics))
            .fallback(ui::serve)
            .layer(middleware::from_fn_with_state(self.clone(), time_requests))
            .with_state(self)
    }

    /// Runs a store call on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, Problem> + Send + 'static,
    ) -> Result<T, Problem> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Problem::internal(&e))?
    }
}

async fn time_requests(State(api): State<Api>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    api.metrics.request(&route, &method, started.elapsed());
    response
}

/// The secret of a request's bearer token, if it has an Authorization
/// header; 401 if that header is not `Bearer <token>`.
fn bearer(headers: &axum::http::HeaderMap) -> Result<Option<String>, Problem> {
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

/// Who is calling: nobody, or the holder of a token.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    Anonymous,
    Holder(Token),
}

impl Caller {
    /// Reads the bearer token of a request; an unknown token is refused
    /// outright rather than treated as no token.
    async fn of(api: &Api, headers: &axum::http::HeaderMap) -> Result<Caller, Problem> {
        match bearer(headers)? {
            None => Ok(Caller::Anonymous),
            Some(secret) => {
                api.blocking(move |store| Caller::holder(store, &secret))
                    .await
            }
        }
    }

    /// The holder of the token `secret`, or 401; for a caller already on
    /// a blocking thread.
    fn holder(store: &Store, secret: &str) -> Result<Caller, Problem> {
        store
            .authenticate(secret)?
            .map(Caller::Holder)
            .ok_or_else(|| Problem {
                detail: "unknown or revoked token".into(),
                ..Problem::unauthorized()
            })
    }

    /// The token, or 401.
    fn token(&self) -> Result<&Token, Problem> {
        match self {
            Caller::Holder(t) => Ok(t),
            Caller::Anonymous => Err(Problem::unauthorized()),
        }
    }

    /// Whether this caller may see `stream` (open streams are for everyone).
    fn may_read(&self, stream: &StreamInfo) -> bool {
        stream.open || matches!(self, Caller::Holder(t) if t.allows(Scope::Read, &stream.name))
    }

    /// 401 or 403 unless the caller may use the stream named `name` with
    /// `scope`; `stream` is the stream when it exists.
    fn check(&self, scope: Scope, name: &str, stream: Option<&StreamInfo>) -> Result<(), Problem> {
        if scope == Scope::Read && stream.is_some_and(|s| s.open) {
            return Ok(());
        }
        let token = self.token()?;
        if token.allows(scope, name) {
            Ok(())
        } else if token.scope < scope {
            Err(Problem::forbidden(format!(
                "token {:?} has scope {}, this needs {scope}",
                token.name, token.scope
            )))
        } else {
            Err(Problem::forbidden(format!(
                "token {:?} is limited to streams {}, not {name}",
                token.name,
                token.streams.as_str()
            )))
        }
    }
}
