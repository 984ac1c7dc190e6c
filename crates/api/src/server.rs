//! The HTTP server as a component of the node.

use node::{BoxFuture, Component, Context, Failure};

use crate::Api;

/// Serves the API on a listening socket until the node stops.
pub struct Http {
    listener: std::net::TcpListener,
    api: Api,
}

impl Http {
    /// Binds `listen` at once, so that a taken address is reported before
    /// anything starts; the API is served once the node runs.
    pub fn bind(listen: &str, api: Api) -> Result<Http, String> {
        let listener = std::net::TcpListener::bind(listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        Ok(Http { listener, api })
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
            let listener = tokio::net::TcpListener::from_std(self.listener)?;
            let app = self.api.with_status(cx.status.clone()).router();
            cx.ready();
            axum::serve(listener, app)
                .with_graceful_shutdown(cx.shutdown.requested())
                .await
                .map_err(|e| format!("the HTTP server failed: {e}").into())
        })
    }
}
