//! Connecting to the organisation's XMPP server: TCP to the configured
//! address (or the domain's SRV records), STARTTLS verified against the
//! system's roots or a configured CA file (for self-hosted servers with a
//! private CA; both built by the `tls` crate), then SCRAM (done by
//! tokio-xmpp).

use std::io;
use std::path::Path;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_xmpp::connect::{DnsConfig, ServerConnector};
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, PendingFeaturesRecv, ReadError, StreamHeader, Timeouts, XmlStream,
    XmppStreamElement, initiate_stream,
};

use crate::Error;

/// Connects with STARTTLS, trusting the roots it was built with.
#[derive(Clone)]
pub(crate) struct Connector {
    dns: DnsConfig,
    tls: Arc<ClientConfig>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").field("dns", &self.dns).finish()
    }
}

impl Connector {
    /// A connector to `address` (`host:port`), or to the JID's domain by
    /// SRV records; trusting `ca_file` (PEM) if given, else the system's roots.
    pub fn new(
        domain: &str,
        address: Option<&str>,
        ca_file: Option<&Path>,
    ) -> Result<Connector, Error> {
        let dns = match address {
            Some(address) => {
                let (host, port) = address.rsplit_once(':').ok_or_else(|| {
                    Error::Config(format!("[xmpp] address {address:?}: expected host:port"))
                })?;
                let port: u16 = port.parse().map_err(|_| {
                    Error::Config(format!(
                        "[xmpp] address {address:?}: {port:?} is not a port"
                    ))
                })?;
                DnsConfig::no_srv(host, port)
            }
            None => DnsConfig::srv_default_client(domain),
        };
        let tls = tls::configured("[xmpp]", ca_file).map_err(Error::Config)?;
        Ok(Connector { dns, tls })
    }
}

fn header(domain: &str) -> StreamHeader<'_> {
    StreamHeader {
        to: Some(std::borrow::Cow::Borrowed(domain)),
        from: None,
        id: None,
    }
}

impl ServerConnector for Connector {
    type Stream = BufStream<TlsStream<TcpStream>>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<
        (
            PendingFeaturesRecv<Self::Stream>,
            sasl::common::ChannelBinding,
        ),
        tokio_xmpp::Error,
    > {
        let domain = jid.domain().as_str();
        let tcp = self.dns.resolve().await?;
        // Pushes and receipts are small writes that must leave at once:
        // with Nagle's algorithm, each would wait for the previous one's
        // acknowledgement (tens of milliseconds with delayed ACKs).
        tcp.set_nodelay(true)?;
        let tcp = BufStream::new(tcp);
        let plain = initiate_stream(tcp, ns, header(domain), timeouts).await?;
        let (features, mut plain): (_, XmlStream<_, FallibleStreamElement>) =
            plain.recv_features().await?;
        if !features.can_starttls() {
            return Err(tokio_xmpp::Error::Protocol(
                tokio_xmpp::error::ProtocolError::NoTls,
            ));
        }
        plain
            .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
                starttls::Request,
            )))
            .await?;
        loop {
            match plain
                .next()
                .await
                .map(|v| v.and_then(|v| v.into_read_error()))
            {
                Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
                Some(Ok(_)) | Some(Err(ReadError::SoftTimeout)) => {}
                Some(Err(ReadError::HardError(e))) => return Err(e.into()),
                Some(Err(ReadError::ParseError(e))) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e).into());
                }
                None | Some(Err(ReadError::StreamFooterReceived)) => {
                    return Err(tokio_xmpp::Error::Disconnected);
                }
            }
        }
        let tcp = plain.into_inner().into_inner();
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await?;
        let stream = initiate_stream(BufStream::new(tls), ns, header(domain), timeouts).await?;
        Ok((stream, sasl::common::ChannelBinding::None))
    }
}
