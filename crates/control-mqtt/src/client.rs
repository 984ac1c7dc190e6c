//! The control loop's MQTT 3.1.1 client: one session with one broker, over
//! TCP or TLS (rustls), on rumqttc's packet codec (`mqttbytes::v4`, the one
//! the embedded broker uses too).
//!
//! It comes in two halves, as rumqttc's does: a [`Client`], which queues
//! publishes and subscriptions and never waits (a full queue is an error
//! at once), and a [`Connection`], which the loop polls for [`Event`]s and
//! which does all the I/O: connecting, keep-alive, acknowledgements, and
//! re-sending, marked DUP, the QoS 1 publishes a lost connection left
//! unacknowledged. After an error, the next poll connects again; when to
//! poll again is the caller's choice.
//!
//! What it does not do: send at QoS 2 (taken as QoS 1), unsubscribe, last
//! wills, MQTT 5, WebSockets, proxies.
//!
//! Invariant: [`Connection::poll`] is cancel-safe. Everything between two
//! polls, the connection being made included, is kept in the
//! `Connection`, so the loop may poll it in a `select!`.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rumqttc::{
    ConnAck, Connect, ConnectReturnCode, Packet, PubAck, PubComp, PubRec, Publish, QoS, Subscribe,
    SubscribeFilter, SubscribeReasonCode,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

/// QoS 1 publishes sent and not yet acknowledged, at most (rumqttc's
/// default); more wait in the queue.
const MAX_INFLIGHT: usize = 100;

/// From the TCP connection to the CONNACK, at most.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);

/// Bytes encoded ahead of the socket, at most (one packet may pass it).
const WRITE_AHEAD: usize = 64 * 1024;

/// What is left to send at [`Connection::disconnect`] goes within this.
const DISCONNECT_WITHIN: Duration = Duration::from_secs(1);

/// Whom to connect to, and how.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) client_id: String,
    /// User name and password.
    pub(crate) login: Option<(String, String)>,
    /// TLS, trusting what it says (server name: `host`); TCP if `None`.
    pub(crate) tls: Option<Arc<ClientConfig>>,
    /// PINGREQ after this long without traffic; dead after 1.5 times it
    /// without anything received. Whole seconds (zero: none).
    pub(crate) keep_alive: Duration,
    /// Whether the broker should forget the session at each connection.
    pub(crate) clean_session: bool,
    /// Largest packet taken or sent, in bytes.
    pub(crate) max_packet: usize,
}

/// What a poll gives.
#[derive(Debug)]
pub(crate) enum Event {
    /// The broker accepted the connection (again).
    Connected(ConnAck),
    /// A subscription acknowledged; the filters the broker refused.
    Subscribed { refused: Vec<String> },
    /// A message, acknowledged already if QoS 1 (its retain flag as the
    /// broker sent it).
    Message(Publish),
}

/// Why a connection ended, or a request was not queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("{0:?} is no TLS server name")]
    ServerName(String),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("no CONNACK within {CONNECT_WITHIN:?}")]
    ConnectTimeout,
    #[error("the broker refused the connection: {}", refusal(*.0))]
    Refused(ConnectReturnCode),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the broker closed the connection")]
    Closed,
    #[error("nothing from the broker for {0:?} (1.5 keep-alives)")]
    Silent(Duration),
    #[error("malformed packet from the broker: {0}")]
    Malformed(rumqttc::Error),
    #[error("unexpected packet from the broker: {0}")]
    Unexpected(String),
    #[error("cannot encode a packet: {0}")]
    Encode(rumqttc::Error),
    #[error("a packet of {size} bytes, above the {max} allowed")]
    TooLarge { size: usize, max: usize },
    #[error("a topic of {0} bytes: MQTT's are at most 65,535")]
    LongTopic(usize),
    #[error("the outgoing queue is full ({0} waiting)")]
    Full(usize),
    #[error("the connection is gone")]
    Gone,
}

fn refusal(code: ConnectReturnCode) -> String {
    let why = match code {
        ConnectReturnCode::Success => "accepted",
        ConnectReturnCode::RefusedProtocolVersion => "protocol version not supported",
        ConnectReturnCode::BadClientId => "client id rejected",
        ConnectReturnCode::ServiceUnavailable => "server unavailable",
        ConnectReturnCode::BadUserNamePassword => "bad user name or password",
        ConnectReturnCode::NotAuthorized => "not authorized",
    };
    format!("return code {} ({why})", code as u8)
}

enum Request {
    Publish(Publish),
    Subscribe(Subscribe),
}

/// The queueing half; clones queue on the same connection.
#[derive(Clone)]
pub(crate) struct Client {
    requests: mpsc::Sender<Request>,
    capacity: usize,
    max_packet: usize,
}

/// A client and its connection, with room for `capacity` requests; it
/// connects at the first poll.
pub(crate) fn new(options: Options, capacity: usize) -> (Client, Connection) {
    let (requests, queued) = mpsc::channel(capacity);
    let client = Client {
        requests,
        capacity,
        max_packet: options.max_packet,
    };
    let connection = Connection {
        options: Arc::new(options),
        state: State::Down,
        session: Session {
            queued,
            inflight: VecDeque::new(),
            subscribing: Vec::new(),
            next_pkid: 0,
        },
    };
    (client, connection)
}

impl Client {
    /// Queues a publish (QoS 2 is sent as QoS 1).
    pub(crate) fn publish(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), Error> {
        let qos = if qos == QoS::ExactlyOnce {
            QoS::AtLeastOnce
        } else {
            qos
        };
        let mut publish = Publish::new(topic, qos, payload);
        publish.retain = retain;
        topic_fits(&publish.topic)?;
        // Sized with a packet id, as it is sent: the id's two bytes can
        // lengthen the size field too.
        publish.pkid = u16::from(qos != QoS::AtMostOnce);
        self.fits(publish.size())?;
        self.queue(Request::Publish(publish))
    }

    /// Queues one subscription to `filters`, all at `qos`.
    pub(crate) fn subscribe_many(
        &self,
        filters: impl IntoIterator<Item = String>,
        qos: QoS,
    ) -> Result<(), Error> {
        let filters: Vec<_> = filters
            .into_iter()
            .map(|f| SubscribeFilter::new(f, qos))
            .collect();
        if filters.is_empty() {
            return Ok(());
        }
        for filter in &filters {
            topic_fits(&filter.path)?;
        }
        let mut subscribe = Subscribe::new_many(filters);
        subscribe.pkid = 1;
        self.fits(subscribe.size())?;
        self.queue(Request::Subscribe(subscribe))
    }

    fn fits(&self, size: usize) -> Result<(), Error> {
        // A packet's own size, with its fixed header.
        if size > self.max_packet {
            return Err(Error::TooLarge {
                size,
                max: self.max_packet,
            });
        }
        Ok(())
    }

    fn queue(&self, request: Request) -> Result<(), Error> {
        self.requests.try_send(request).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Full(self.capacity),
            mpsc::error::TrySendError::Closed(_) => Error::Gone,
        })
    }
}

/// MQTT writes a string's length in two bytes: a longer one would be cut
/// and the packet malformed (and refused by the broker at every
/// reconnection).
fn topic_fits(topic: &str) -> Result<(), Error> {
    if topic.len() > usize::from(u16::MAX) {
        return Err(Error::LongTopic(topic.len()));
    }
    Ok(())
}

/// The I/O half.
pub(crate) struct Connection {
    options: Arc<Options>,
    state: State,
    session: Session,
}

/// A connection being made: TCP (and TLS), CONNECT, CONNACK.
type Connecting = Pin<Box<dyn Future<Output = Result<(Link, ConnAck), Error>> + Send>>;

enum State {
    Down,
    Connecting(Connecting),
    Up(Link),
}

/// What the session holds across connections.
struct Session {
    queued: mpsc::Receiver<Request>,
    /// QoS 1 publishes sent and not acknowledged, oldest first.
    inflight: VecDeque<Publish>,
    /// Subscriptions sent and not acknowledged: packet id, filters.
    subscribing: Vec<(u16, Vec<String>)>,
    next_pkid: u16,
}

impl Session {
    /// A packet id that no unacknowledged packet has.
    fn pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            let id = self.next_pkid;
            if !self.inflight.iter().any(|p| p.pkid == id)
                && !self.subscribing.iter().any(|(s, _)| *s == id)
            {
                return id;
            }
        }
    }

    /// Encodes `request` into `link`, giving it a packet id.
    fn send(&mut self, link: &mut Link, request: Request) -> Result<(), Error> {
        match request {
            Request::Publish(mut publish) => {
                if publish.qos == QoS::AtMostOnce {
                    publish.pkid = 0;
                    return link.queue(&Packet::Publish(publish));
                }
                publish.pkid = self.pkid();
                // Kept for a re-send only once it encoded.
                link.queue(&Packet::Publish(publish.clone()))?;
                self.inflight.push_back(publish);
                Ok(())
            }
            Request::Subscribe(mut subscribe) => {
                subscribe.pkid = self.pkid();
                let filters = subscribe.filters.iter().map(|f| f.path.clone()).collect();
                self.subscribing.push((subscribe.pkid, filters));
                link.queue(&Packet::Subscribe(subscribe))
            }
        }
    }

    /// What a packet from the broker does; the event it makes, if any.
    fn take(&mut self, link: &mut Link, packet: Packet) -> Result<Option<Event>, Error> {
        match packet {
            Packet::Publish(publish) => {
                match publish.qos {
                    QoS::AtMostOnce => {}
                    QoS::AtLeastOnce => link.queue(&Packet::PubAck(PubAck::new(publish.pkid)))?,
                    // Not asked for (every subscription is QoS 1 at most),
                    // but answered: delivered at once, maybe twice.
                    QoS::ExactlyOnce => link.queue(&Packet::PubRec(PubRec::new(publish.pkid)))?,
                }
                return Ok(Some(Event::Message(publish)));
            }
            Packet::PubRel(rel) => link.queue(&Packet::PubComp(PubComp::new(rel.pkid)))?,
            Packet::PubAck(ack) => self.inflight.retain(|p| p.pkid != ack.pkid),
            Packet::SubAck(ack) => {
                let Some(at) = self.subscribing.iter().position(|(s, _)| *s == ack.pkid) else {
                    return Err(Error::Unexpected(format!("SUBACK {} of nothing", ack.pkid)));
                };
                let (_, filters) = self.subscribing.remove(at);
                let refused = filters
                    .into_iter()
                    .zip(&ack.return_codes)
                    .filter(|(_, code)| **code == SubscribeReasonCode::Failure)
                    .map(|(filter, _)| filter)
                    .collect();
                return Ok(Some(Event::Subscribed { refused }));
            }
            Packet::PingResp => link.pinged = false,
            other => return Err(Error::Unexpected(format!("{other:?}"))),
        }
        Ok(None)
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// One connection, accepted.
struct Link {
    stream: Box<dyn Stream>,
    max_packet: usize,
    read: BytesMut,
    write: BytesMut,
    /// Written since the last flush.
    unflushed: bool,
    last_in: Instant,
    last_out: Instant,
    /// A PINGREQ is waiting for its PINGRESP.
    pinged: bool,
    timer: Pin<Box<Sleep>>,
}

impl Link {
    fn queue(&mut self, packet: &Packet) -> Result<(), Error> {
        encode(packet, &mut self.write, self.max_packet)
    }
}

/// Encodes `packet` (sizes are checked when queued: a failure here is a bug).
fn encode(packet: &Packet, into: &mut BytesMut, max: usize) -> Result<(), Error> {
    packet.write(into, max).map(drop).map_err(Error::Encode)
}

impl Connection {
    /// The next event; connects first if there is no connection. After an
    /// error the connection is down, and the next poll connects again.
    pub(crate) async fn poll(&mut self) -> Result<Event, Error> {
        poll_fn(|cx| {
            let polled = self.poll_event(cx);
            if let Poll::Ready(Err(_)) = polled {
                self.state = State::Down;
            }
            polled
        })
        .await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, Error>> {
        loop {
            match &mut self.state {
                State::Down => {
                    let options = self.options.clone();
                    self.state = State::Connecting(Box::pin(async move {
                        tokio::time::timeout(CONNECT_WITHIN, connect(&options))
                            .await
                            .map_err(|_| Error::ConnectTimeout)?
                    }));
                }
                State::Connecting(connecting) => {
                    let (mut link, connack) = ready!(connecting.as_mut().poll(cx))?;
                    if connack.code != ConnectReturnCode::Success {
                        return Poll::Ready(Err(Error::Refused(connack.code)));
                    }
                    // What was not acknowledged goes again, first, in
                    // order; subscriptions are made again by the caller.
                    self.session.subscribing.clear();
                    for publish in &mut self.session.inflight {
                        publish.dup = true;
                        link.queue(&Packet::Publish(publish.clone()))?;
                    }
                    self.state = State::Up(link);
                    return Poll::Ready(Ok(Event::Connected(connack)));
                }
                State::Up(link) => {
                    return poll_link(link, &mut self.session, &self.options, cx);
                }
            }
        }
    }

    /// Sends what is queued (within a second), then DISCONNECT, and closes.
    pub(crate) async fn disconnect(&mut self) {
        if let State::Up(link) = &mut self.state {
            let session = &mut self.session;
            session.queued.close();
            while let Ok(request) = session.queued.try_recv() {
                if session.send(link, request).is_err() {
                    break;
                }
            }
            if link.queue(&Packet::Disconnect).is_ok() {
                let _ = tokio::time::timeout(DISCONNECT_WITHIN, async {
                    link.stream.write_all(&link.write).await?;
                    link.stream.shutdown().await
                })
                .await;
            }
        }
        self.state = State::Down;
    }
}

/// Makes progress on an accepted connection: writes what is queued, pings,
/// reads; returns an event or an error, or is pending.
fn poll_link(
    link: &mut Link,
    session: &mut Session,
    options: &Options,
    cx: &mut Context<'_>,
) -> Poll<Result<Event, Error>> {
    let keep_alive = options.keep_alive;
    loop {
        // Requests, as far as the inflight window and the buffer allow.
        while link.write.len() < WRITE_AHEAD && session.inflight.len() < MAX_INFLIGHT {
            match session.queued.poll_recv(cx) {
                Poll::Ready(Some(request)) => session.send(link, request)?,
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        while !link.write.is_empty() {
            match Pin::new(&mut link.stream).poll_write(cx, &link.write)? {
                Poll::Ready(0) => return Poll::Ready(Err(Error::Closed)),
                Poll::Ready(n) => {
                    link.write.advance(n);
                    link.last_out = Instant::now();
                    link.unflushed = true;
                }
                Poll::Pending => break,
            }
        }
        if link.write.is_empty()
            && link.unflushed
            && Pin::new(&mut link.stream).poll_flush(cx)?.is_ready()
        {
            link.unflushed = false;
        }
        if !keep_alive.is_zero() {
            let now = Instant::now();
            let dead_at = link.last_in + keep_alive * 3 / 2;
            if now >= dead_at {
                return Poll::Ready(Err(Error::Silent(keep_alive * 3 / 2)));
            }
            let ping_at = link.last_in.min(link.last_out) + keep_alive;
            if !link.pinged && now >= ping_at {
                link.queue(&Packet::PingReq)?;
                link.pinged = true;
                continue;
            }
            let wake_at = if link.pinged { dead_at } else { ping_at };
            if link.timer.deadline() != wake_at {
                link.timer.as_mut().reset(wake_at);
            }
            if link.timer.as_mut().poll(cx).is_ready() {
                continue;
            }
        }
        match Packet::read(&mut link.read, options.max_packet) {
            Ok(packet) => {
                if let Some(event) = session.take(link, packet)? {
                    return Poll::Ready(Ok(event));
                }
                continue;
            }
            Err(rumqttc::Error::InsufficientBytes(_)) => {}
            Err(e) => return Poll::Ready(Err(Error::Malformed(e))),
        }
        let mut chunk = [0; 8192];
        let mut buf = ReadBuf::new(&mut chunk);
        ready!(Pin::new(&mut link.stream).poll_read(cx, &mut buf))?;
        if buf.filled().is_empty() {
            return Poll::Ready(Err(Error::Closed));
        }
        link.read.extend_from_slice(buf.filled());
        link.last_in = Instant::now();
    }
}

/// TCP (and TLS), CONNECT, CONNACK.
async fn connect(options: &Options) -> Result<(Link, ConnAck), Error> {
    let address = format!("{}:{}", options.host, options.port);
    let tcp = TcpStream::connect((options.host.as_str(), options.port))
        .await
        .map_err(|e| Error::Connect(address, e))?;
    // Orders and their confirmations are small: no Nagle delay.
    let _ = tcp.set_nodelay(true);
    let mut stream: Box<dyn Stream> = match &options.tls {
        None => Box::new(tcp),
        Some(config) => {
            let name = ServerName::try_from(options.host.clone())
                .map_err(|_| Error::ServerName(options.host.clone()))?;
            let tls = TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(Error::Tls)?;
            Box::new(tls)
        }
    };
    let mut connect = Connect::new(options.client_id.clone());
    connect.keep_alive = u16::try_from(options.keep_alive.as_secs()).unwrap_or(u16::MAX);
    connect.clean_session = options.clean_session;
    if let Some((user, password)) = &options.login {
        connect.set_login(user, password);
    }
    let mut out = BytesMut::new();
    encode(&Packet::Connect(connect), &mut out, options.max_packet)?;
    stream.write_all(&out).await?;
    stream.flush().await?;
    let mut read = BytesMut::with_capacity(8192);
    let connack = loop {
        match Packet::read(&mut read, options.max_packet) {
            Ok(Packet::ConnAck(connack)) => break connack,
            Ok(other) => return Err(Error::Unexpected(format!("{other:?} before CONNACK"))),
            Err(rumqttc::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err(Error::Malformed(e)),
        }
        if stream.read_buf(&mut read).await? == 0 {
            return Err(Error::Closed);
        }
    };
    let now = Instant::now();
    let link = Link {
        stream,
        max_packet: options.max_packet,
        // What came with the CONNACK stays, to be read next.
        read,
        write: BytesMut::new(),
        unflushed: false,
        last_in: now,
        last_out: now,
        pinged: false,
        timer: Box::pin(tokio::time::sleep_until(now)),
    };
    Ok((link, connack))
}

#[cfg(test)]
mod tests;
