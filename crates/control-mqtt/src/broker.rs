//! A small MQTT 3.1.1 broker inside the node, for a node that has none to
//! talk to: a household's or a demo's few devices connect to it, and the
//! control loop too. A cooperative driving a fleet runs Mosquitto.
//!
//! What it does:
//! - QoS 0 and 1 (a QoS 2 publish is taken as QoS 1), retained messages,
//!   last wills, wildcard subscriptions (`+`, `#`), keep-alive;
//! - a client id connecting again takes over: the old connection is
//!   closed, as MQTT says;
//! - optional user and password; it listens where it is told (loopback
//!   by default).
//!
//! What it does not do: keep sessions across connections (every session is
//! clean; the control loop subscribes again after each connection anyway),
//! re-send an unacknowledged QoS 1 message after a reconnection, TLS.
//!
//! A client whose outgoing queue is full (it does not read) is
//! disconnected, with a log line, rather than let memory grow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, QoS, SubAck, SubscribeReasonCode,
    UnsubAck, matches, valid_filter, valid_topic,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// Largest packet taken or sent, in bytes.
const PACKET_MAX: usize = 1 << 20;

/// Messages waiting for one client, at most.
const QUEUE: usize = 100_000;

/// Who may connect.
#[derive(Debug, Clone, Default)]
pub struct BrokerAuth {
    /// User name and password every client must give; anyone if `None`.
    pub login: Option<(String, String)>,
}

/// One connected client, as the router sees it.
struct Client {
    id: String,
    /// Its connection's number: a client id connecting again gets a new one.
    connection: u64,
    outgoing: mpsc::Sender<Packet>,
    subscriptions: Vec<(String, QoS)>,
    next_pkid: u16,
}

#[derive(Default)]
struct Router {
    clients: HashMap<u64, Client>,
    retained: HashMap<String, Publish>,
    next_connection: u64,
}

impl Router {
    /// Sends `publish` to every subscriber (at the lower of the two QoS);
    /// returns the connections to close, whose queue is full.
    fn route(&mut self, publish: &Publish) -> Vec<u64> {
        let mut full = Vec::new();
        for client in self.clients.values_mut() {
            let granted = client
                .subscriptions
                .iter()
                .filter(|(filter, _)| matches(&publish.topic, filter))
                .map(|(_, qos)| *qos)
                .max_by_key(|qos| *qos as u8);
            let Some(granted) = granted else { continue };
            let mut copy = publish.clone();
            copy.qos = lower(publish.qos, granted);
            copy.retain = false;
            copy.dup = false;
            copy.pkid = if copy.qos == QoS::AtMostOnce {
                0
            } else {
                client.next_pkid = client.next_pkid.checked_add(1).unwrap_or(1);
                client.next_pkid
            };
            if client.outgoing.try_send(Packet::Publish(copy)).is_err() {
                full.push(client.connection);
            }
        }
        full
    }

    fn retain(&mut self, publish: &Publish) {
        if publish.payload.is_empty() {
            self.retained.remove(&publish.topic);
        } else {
            self.retained.insert(publish.topic.clone(), publish.clone());
        }
    }
}

fn lower(a: QoS, b: QoS) -> QoS {
    if (a as u8) <= (b as u8) { a } else { b }
}

/// The broker's shared state.
#[derive(Clone, Default)]
pub struct Broker {
    router: Arc<Mutex<Router>>,
    auth: BrokerAuth,
}

impl Broker {
    /// A broker that lets in who `auth` says.
    pub fn new(auth: BrokerAuth) -> Broker {
        Broker {
            router: Arc::default(),
            auth,
        }
    }

    fn router(&self) -> std::sync::MutexGuard<'_, Router> {
        self.router.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves clients on `listener` until `shutdown` turns true.
    pub async fn serve(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let _ = socket.set_nodelay(true);
                        let broker = self.clone();
                        tokio::spawn(async move {
                            if let Err(e) = broker.connection(socket).await {
                                tracing::debug!("broker: {peer}: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!("broker: accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = node::stop_requested(&mut shutdown) => return,
            }
        }
    }

    /// One client's connection, from its CONNECT to its end.
    async fn connection(self, socket: TcpStream) -> Result<(), String> {
        let (mut reader, mut writer) = socket.into_split();
        let mut buffer = BytesMut::with_capacity(4096);
        let first = tokio::time::timeout(
            Duration::from_secs(10),
            next_packet(&mut reader, &mut buffer),
        )
        .await
        .map_err(|_| "no CONNECT within 10 s".to_owned())??;
        let Packet::Connect(connect) = first else {
            return Err(format!("expected CONNECT, got {first:?}"));
        };
        let refuse = |code| Packet::ConnAck(ConnAck::new(code, false));
        if let Some((user, password)) = &self.auth.login {
            let given = connect.login.as_ref();
            if !given.is_some_and(|l| &l.username == user && &l.password == password) {
                send(&mut writer, &refuse(ConnectReturnCode::BadUserNamePassword)).await?;
                return Err(format!(
                    "client {:?}: wrong user or password",
                    connect.client_id
                ));
            }
        }
        if connect.client_id.is_empty() && !connect.clean_session {
            send(&mut writer, &refuse(ConnectReturnCode::BadClientId)).await?;
            return Err("an empty client id needs a clean session".into());
        }
        let (outgoing, mut queue) = mpsc::channel(QUEUE);
        let connection = {
            let mut router = self.router();
            router.next_connection += 1;
            let connection = router.next_connection;
            // A client id connecting again takes over: the old connection
            // is closed.
            router.clients.retain(|_, c| {
                let taken = !connect.client_id.is_empty() && c.id == connect.client_id;
                if taken {
                    let _ = c.outgoing.try_send(Packet::Disconnect);
                }
                !taken
            });
            router.clients.insert(
                connection,
                Client {
                    id: connect.client_id.clone(),
                    connection,
                    outgoing: outgoing.clone(),
                    subscriptions: Vec::new(),
                    next_pkid: 0,
                },
            );
            connection
        };
        send(
            &mut writer,
            &Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false)),
        )
        .await?;
        // Its packets go out through one writer task, in order.
        let write = tokio::spawn(async move {
            while let Some(packet) = queue.recv().await {
                // A server sends no DISCONNECT in MQTT 3.1.1: it closes.
                if packet == Packet::Disconnect || send(&mut writer, &packet).await.is_err() {
                    break;
                }
            }
        });
        // Silent for 1.5 keep-alives: gone (MQTT 3.1.1, 3.1.2.10).
        let silence = match connect.keep_alive {
            0 => Duration::from_secs(24 * 3600),
            s => Duration::from_millis(u64::from(s) * 1500),
        };
        let ended = self
            .take_packets(connection, &outgoing, &mut reader, &mut buffer, silence)
            .await;
        let still_current = self.router().clients.remove(&connection).is_some();
        if ended.is_err()
            && still_current
            && let Some(will) = connect.last_will
        {
            let mut publish = Publish::from_bytes(will.topic, will.qos, will.message);
            publish.retain = will.retain;
            self.publish(publish);
        }
        drop(outgoing);
        write.abort();
        ended
    }

    /// Takes a client's packets until it disconnects (`Ok`) or the
    /// connection ends otherwise (`Err`: its will is published).
    async fn take_packets(
        &self,
        connection: u64,
        outgoing: &mpsc::Sender<Packet>,
        reader: &mut tokio::net::tcp::OwnedReadHalf,
        buffer: &mut BytesMut,
        silence: Duration,
    ) -> Result<(), String> {
        loop {
            let packet = tokio::time::timeout(silence, next_packet(reader, buffer))
                .await
                .map_err(|_| "silent past its keep-alive".to_owned())??;
            if !self.router().clients.contains_key(&connection) {
                return Err("taken over by a new connection with its client id".into());
            }
            let answer = match packet {
                Packet::Publish(mut publish) => {
                    if !valid_topic(&publish.topic) || publish.topic.is_empty() {
                        return Err(format!("published to an invalid topic {:?}", publish.topic));
                    }
                    let ack = match publish.qos {
                        QoS::AtMostOnce => None,
                        _ => Some(Packet::PubAck(PubAck::new(publish.pkid))),
                    };
                    if publish.qos == QoS::ExactlyOnce {
                        publish.qos = QoS::AtLeastOnce;
                    }
                    self.publish(publish);
                    ack
                }
                Packet::Subscribe(subscribe) => {
                    let mut codes = Vec::new();
                    let mut retained = Vec::new();
                    {
                        let mut router = self.router();
                        let matching: Vec<Publish> = subscribe
                            .filters
                            .iter()
                            .filter(|f| valid_filter(&f.path))
                            .flat_map(|f| {
                                router
                                    .retained
                                    .values()
                                    .filter(|p| matches(&p.topic, &f.path))
                                    .map(|p| {
                                        let mut copy = p.clone();
                                        copy.qos = lower(p.qos, f.qos);
                                        copy
                                    })
                                    .collect::<Vec<_>>()
                            })
                            .collect();
                        let Some(client) = router.clients.get_mut(&connection) else {
                            return Err("taken over".into());
                        };
                        for filter in &subscribe.filters {
                            if !valid_filter(&filter.path) {
                                codes.push(SubscribeReasonCode::Failure);
                                continue;
                            }
                            let qos = lower(filter.qos, QoS::AtLeastOnce);
                            client.subscriptions.retain(|(f, _)| *f != filter.path);
                            client.subscriptions.push((filter.path.clone(), qos));
                            codes.push(SubscribeReasonCode::Success(qos));
                        }
                        for mut publish in matching {
                            publish.pkid = if publish.qos == QoS::AtMostOnce {
                                0
                            } else {
                                client.next_pkid = client.next_pkid.checked_add(1).unwrap_or(1);
                                client.next_pkid
                            };
                            retained.push(Packet::Publish(publish));
                        }
                    }
                    queue(outgoing, Packet::SubAck(SubAck::new(subscribe.pkid, codes)))?;
                    // Retained messages come after the SUBACK, flagged.
                    for packet in retained {
                        queue(outgoing, packet)?;
                    }
                    None
                }
                Packet::Unsubscribe(unsubscribe) => {
                    if let Some(client) = self.router().clients.get_mut(&connection) {
                        client
                            .subscriptions
                            .retain(|(f, _)| !unsubscribe.topics.contains(f));
                    }
                    Some(Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid)))
                }
                Packet::PingReq => Some(Packet::PingResp),
                Packet::Disconnect => return Ok(()),
                // Acknowledgements of what it was sent: nothing is re-sent.
                Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) => None,
                Packet::PubRel(rel) => Some(Packet::PubComp(rumqttc::PubComp::new(rel.pkid))),
                other => return Err(format!("unexpected packet {other:?}")),
            };
            if let Some(answer) = answer {
                queue(outgoing, answer)?;
            }
        }
    }

    /// Keeps `publish` if it is retained, and sends it to its subscribers.
    fn publish(&self, publish: Publish) {
        let full = {
            let mut router = self.router();
            if publish.retain {
                router.retain(&publish);
            }
            router.route(&publish)
        };
        if !full.is_empty() {
            let mut router = self.router();
            for connection in full {
                if let Some(client) = router.clients.remove(&connection) {
                    tracing::warn!(
                        "broker: client {:?} does not read its messages ({QUEUE} waiting): disconnected",
                        client.id
                    );
                }
            }
        }
    }
}

fn queue(outgoing: &mpsc::Sender<Packet>, packet: Packet) -> Result<(), String> {
    outgoing
        .try_send(packet)
        .map_err(|_| "its outgoing queue is full".to_owned())
}

async fn next_packet(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buffer: &mut BytesMut,
) -> Result<Packet, String> {
    loop {
        match Packet::read(buffer, PACKET_MAX) {
            Ok(packet) => return Ok(packet),
            Err(rumqttc::Error::InsufficientBytes(more)) => buffer.reserve(more),
            Err(e) => return Err(format!("malformed packet: {e}")),
        }
        let read = reader
            .read_buf(buffer)
            .await
            .map_err(|e| format!("reading: {e}"))?;
        if read == 0 {
            return Err("connection closed without DISCONNECT".into());
        }
    }
}

async fn send(writer: &mut tokio::net::tcp::OwnedWriteHalf, packet: &Packet) -> Result<(), String> {
    let mut bytes = BytesMut::new();
    packet
        .write(&mut bytes, PACKET_MAX)
        .map_err(|e| format!("encoding: {e}"))?;
    writer
        .write_all(&bytes)
        .await
        .map_err(|e| format!("writing: {e}"))
}
