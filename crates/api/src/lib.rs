//! fedwatt's HTTP API under `/api/v1`: ingest SenML, list streams, read
//! records, calendar aggregates and profiles; `/healthz`, `/metrics` and the
//! OpenAPI document.
//!
//! Every call needs a bearer token or a signed-in account's session
//! cookie (with its CSRF header when it changes anything), except reads of
//! streams published as open. Errors are RFC 9457 problem details. The store is synchronous: its
//! calls run on tokio's blocking threads, never on the runtime's.
//!
//! The web UI's use cases sit beside the raw data: cooperative projects
//! and what each investor's shares produce (`projects.rs`), individual and
//! collective self-consumption (`selfconsumption.rs`), both on energy per
//! interval (`energy.rs`), and the node's status (`status.rs`).
//!
//! Every other path serves the web UI embedded in the binary (`ui`).
//!
//! What it does not do: TLS (put the node behind a reverse proxy).

mod accounts;
mod caller;
mod control_api;
mod energy;
mod grants;
mod handlers;
mod me;
mod metrics;
mod problem;
mod projects;
mod records;
mod selfconsumption;
mod server;
mod session;
mod status;
mod ui;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use node::StatusBoard;
use store::Store;

use caller::Caller;

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
    /// Whether session cookies are marked `Secure`.
    secure_cookies: bool,
    logins: Arc<session::LoginLimiter>,
    identity: status::Identity,
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
            secure_cookies: true,
            logins: Arc::default(),
            identity: status::Identity::new("fedwatt".into()),
        }
    }

    /// Marks session cookies `Secure` (the default) or not: browsers send
    /// a `Secure` cookie over HTTPS, and to localhost, only.
    pub fn with_secure_cookies(mut self, secure: bool) -> Api {
        self.secure_cookies = secure;
        self
    }

    /// Names the node in `/api/v1/status` (its JID when it federates).
    pub fn named(mut self, name: String) -> Api {
        self.identity = status::Identity::new(name);
        self
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
            .route("/api/v1/grants/{id}", delete(grants::revoke))
            .route(
                "/api/v1/session",
                get(session::show)
                    .post(session::sign_in)
                    .delete(session::sign_out),
            )
            .route("/api/v1/accounts", get(accounts::list).post(accounts::add))
            .route(
                "/api/v1/accounts/{account}",
                get(accounts::show)
                    .patch(accounts::change)
                    .delete(accounts::remove),
            )
            .route("/api/v1/me/grants", get(me::grants))
            .route("/api/v1/me/transfers", get(me::transfers))
            .route("/api/v1/me/export", get(me::export))
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
            .route("/api/v1/projects", get(projects::list).post(projects::add))
            .route(
                "/api/v1/projects/{id}",
                get(projects::show)
                    .patch(projects::patch)
                    .delete(projects::remove),
            )
            .route("/api/v1/projects/{id}/investors", get(projects::investors))
            .route(
                "/api/v1/projects/{id}/investors/{account}",
                axum::routing::put(projects::put_investor).delete(projects::remove_investor),
            )
            .route("/api/v1/projects/{id}/summary", get(projects::summary))
            .route("/api/v1/selfconsumption", get(selfconsumption::answer))
            .route("/api/v1/status", get(status::answer))
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
