//! The HTTP server as a component of the node.

use node::{BoxFuture, Component, Context, Failure};
use serde::{Deserialize, Serialize};
use store::Store;

use crate::Api;

/// `[http]`: the HTTP server's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Address and port to listen on.
    pub listen: String,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Session cookies without `Secure`, for a node reached over plain
    /// HTTP on another host than localhost (browsers keep `Secure`
    /// cookies for HTTPS and localhost).
    pub insecure_cookies: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: "127.0.0.1:8080".into(),
            body_limit: 16 * 1024 * 1024,
            insecure_cookies: false,
        }
    }
}

/// Serves the API on a listening socket until the node stops.
pub struct Http {
    listener: std::net::TcpListener,
    api: Api,
}

impl Http {
    /// The API over `store` as `settings` say, with the control loop's
    /// `control` handle if the node drives devices. It binds its address
    /// at once, so that a taken address is reported before anything
    /// starts; the API is served once the node runs.
    pub fn bind(
        settings: &HttpSettings,
        store: Store,
        control: Option<control_mqtt::Handle>,
    ) -> Result<Http, String> {
        let listen = &settings.listen;
        let listener = std::net::TcpListener::bind(listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let api = Api::new(store, settings.body_limit)
            .with_control(control)
            .with_secure_cookies(!settings.insecure_cookies);
        Ok(Http { listener, api })
    }

    /// Names the node in `/api/v1/status` (its JID when it federates).
    pub fn named(mut self, name: String) -> Http {
        self.api = self.api.named(name);
        self
    }

    /// Where it listens.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

impl Component for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn run(self: Box<Self>, mut cx: Context) -> BoxFuture<Result<(), Failure>> {
        Box::pin(async move {
            use axum::serve::ListenerExt;
            let listener = tokio::net::TcpListener::from_std(self.listener)?;
            let app = self.api.with_status(cx.status.clone()).router();
            cx.ready();
            // The client's address, for the sign-in limit.
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            // No Nagle: a streamed answer's last small write would otherwise
            // wait for the client's delayed ACK on a kept-alive connection
            // (40 ms on a day of records that takes 2).
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY not set on a connection: {e}");
                }
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(cx.shutdown.requested())
                .await
                .map_err(|e| format!("the HTTP server failed: {e}").into())
        })
    }
}
