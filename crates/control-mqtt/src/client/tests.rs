//! The client against the node's own broker, against a scripted broker
//! (a socket speaking the codec, to see what goes on the wire) and over TLS
//! against Mosquitto.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use rumqttc::{ConnAck, ConnectReturnCode, Packet, PubAck, Publish, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use super::{Client, Connection, Error, Event, Options, new};
use crate::broker::{Broker, BrokerAuth};

fn options(port: u16, id: &str) -> Options {
    Options {
        host: "127.0.0.1".into(),
        port,
        client_id: id.into(),
        login: None,
        tls: None,
        keep_alive: Duration::from_secs(30),
        clean_session: false,
        max_packet: 1 << 20,
    }
}

async fn embedded(auth: BrokerAuth) -> (u16, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(Broker::new(auth).serve(listener, stopped));
    (port, stop)
}

type Events = mpsc::UnboundedReceiver<Result<Event, Error>>;

/// Polls `connection` in a task, as the loop does (again 100 ms after an
/// error), until told to stop: then it disconnects.
fn pump(mut connection: Connection) -> (Events, oneshot::Sender<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop, mut stopped) = oneshot::channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = connection.poll() => {
                    let failed = event.is_err();
                    if tx.send(event).is_err() {
                        return;
                    }
                    if failed {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                _ = &mut stopped => {
                    connection.disconnect().await;
                    return;
                }
            }
        }
    });
    (rx, stop)
}

async fn next(events: &mut Events) -> Result<Event, Error> {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("no event in 10 s")
        .expect("the connection's task ended")
}

async fn connected(events: &mut Events) {
    match next(events).await {
        Ok(Event::Connected(ack)) => assert_eq!(ack.code, ConnectReturnCode::Success),
        other => panic!("expected a connection, got {other:?}"),
    }
}

async fn subscribe(client: &Client, events: &mut Events, filters: &[&str]) {
    let filters = filters.iter().map(|f| f.to_string());
    client.subscribe_many(filters, QoS::AtLeastOnce).unwrap();
    match next(events).await {
        Ok(Event::Subscribed { refused }) => assert!(refused.is_empty(), "{refused:?}"),
        other => panic!("expected a SUBACK, got {other:?}"),
    }
}

async fn message(events: &mut Events) -> Publish {
    match next(events).await {
        Ok(Event::Message(publish)) => publish,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// (topic, QoS, retain, payload) of a message.
fn seen(p: &Publish) -> (&str, QoS, bool, &[u8]) {
    (&p.topic, p.qos, p.retain, &p.payload)
}

#[tokio::test]
async fn messages_go_both_ways_at_qos_0_and_1_with_their_retain_flag() {
    let (port, _stop) = embedded(BrokerAuth::default()).await;
    let (node, connection) = new(options(port, "node"), 100);
    let (mut node_events, _node_stop) = pump(connection);
    connected(&mut node_events).await;
    subscribe(&node, &mut node_events, &["stat/#"]).await;
    let (device, connection) = new(options(port, "device"), 100);
    let (mut device_events, _device_stop) = pump(connection);
    connected(&mut device_events).await;
    subscribe(&device, &mut device_events, &["cmnd/#"]).await;

    device
        .publish("stat/plug/RESULT", QoS::AtMostOnce, false, "off")
        .unwrap();
    device
        .publish("stat/plug/RESULT", QoS::AtLeastOnce, false, "on")
        .unwrap();
    device
        .publish("stat/plug/LWT", QoS::AtLeastOnce, true, "online")
        .unwrap();
    let got = [
        message(&mut node_events).await,
        message(&mut node_events).await,
        message(&mut node_events).await,
    ];
    assert_eq!(
        got.iter().map(seen).collect::<Vec<_>>(),
        [
            ("stat/plug/RESULT", QoS::AtMostOnce, false, &b"off"[..]),
            ("stat/plug/RESULT", QoS::AtLeastOnce, false, b"on"),
            // Passed on live: not flagged retained.
            ("stat/plug/LWT", QoS::AtLeastOnce, false, b"online"),
        ]
    );
    node.publish("cmnd/plug/POWER", QoS::AtLeastOnce, false, "ON")
        .unwrap();
    let order = message(&mut device_events).await;
    assert_eq!(
        seen(&order),
        ("cmnd/plug/POWER", QoS::AtLeastOnce, false, &b"ON"[..])
    );
    // Kept by the broker, and given flagged to a new subscription.
    subscribe(&node, &mut node_events, &["stat/+/LWT"]).await;
    let kept = message(&mut node_events).await;
    assert_eq!(
        seen(&kept),
        ("stat/plug/LWT", QoS::AtLeastOnce, true, &b"online"[..])
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_naming_the_return_code() {
    let login = Some(("node".to_owned(), "secret".to_owned()));
    let (port, _stop) = embedded(BrokerAuth {
        login: login.clone(),
    })
    .await;
    let mut wrong = options(port, "node");
    wrong.login = Some(("node".into(), "guess".into()));
    let (_client, mut connection) = new(wrong, 10);
    let refused = connection.poll().await.unwrap_err();
    assert!(
        matches!(
            refused,
            Error::Refused(ConnectReturnCode::BadUserNamePassword)
        ),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        "the broker refused the connection: return code 4 (bad user name or password)"
    );
    let mut right = options(port, "node");
    right.login = login;
    let (_client, connection) = new(right, 10);
    let (mut events, _stop) = pump(connection);
    connected(&mut events).await;
}

/// A broker played by the test: packets read and sent one by one.
struct Peer {
    socket: TcpStream,
    buffer: BytesMut,
}

impl Peer {
    async fn accept(listener: &TcpListener) -> Peer {
        let (socket, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .expect("no connection in 10 s")
            .unwrap();
        Peer {
            socket,
            buffer: BytesMut::new(),
        }
    }

    /// The next packet, or `None` at the end of the connection.
    async fn read(&mut self) -> Option<Packet> {
        loop {
            match Packet::read(&mut self.buffer, 1 << 20) {
                Ok(packet) => return Some(packet),
                Err(rumqttc::Error::InsufficientBytes(_)) => {}
                Err(e) => panic!("malformed packet from the client: {e}"),
            }
            let read = tokio::time::timeout(
                Duration::from_secs(10),
                self.socket.read_buf(&mut self.buffer),
            )
            .await
            .expect("nothing from the client in 10 s")
            .unwrap();
            if read == 0 {
                return None;
            }
        }
    }

    async fn publish(&mut self) -> Publish {
        match self.read().await {
            Some(Packet::Publish(publish)) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    async fn send(&mut self, packet: Packet) {
        let mut bytes = BytesMut::new();
        packet.write(&mut bytes, 1 << 20).unwrap();
        self.socket.write_all(&bytes).await.unwrap();
    }

    /// Takes a CONNECT, and accepts it.
    async fn accept_connect(&mut self, session_present: bool) -> rumqttc::Connect {
        let Some(Packet::Connect(connect)) = self.read().await else {
            panic!("expected CONNECT");
        };
        let ack = ConnAck::new(ConnectReturnCode::Success, session_present);
        self.send(Packet::ConnAck(ack)).await;
        connect
    }
}

#[tokio::test]
async fn after_a_lost_connection_it_connects_again_and_resends_what_was_not_acknowledged() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = options(listener.local_addr().unwrap().port(), "node");
    options.login = Some(("node".into(), "secret".into()));
    let (client, connection) = new(options, 100);
    let (mut events, stop) = pump(connection);
    let mut broker = Peer::accept(&listener).await;
    let connect = broker.accept_connect(false).await;
    assert_eq!(
        (connect.client_id.as_str(), connect.keep_alive),
        ("node", 30)
    );
    assert!(!connect.clean_session, "the broker keeps the session");
    let login = connect.login.expect("a login");
    assert_eq!(
        (login.username.as_str(), login.password.as_str()),
        ("node", "secret")
    );
    connected(&mut events).await;

    client
        .publish("a", QoS::AtLeastOnce, false, "first")
        .unwrap();
    client
        .publish("b", QoS::AtLeastOnce, false, "second")
        .unwrap();
    client
        .publish("c", QoS::AtMostOnce, false, "third")
        .unwrap();
    let (a, b, c) = (
        broker.publish().await,
        broker.publish().await,
        broker.publish().await,
    );
    assert_eq!(
        (&a.topic[..], a.dup, c.qos, c.pkid),
        ("a", false, QoS::AtMostOnce, 0)
    );
    assert_ne!(a.pkid, b.pkid);
    broker.send(Packet::PubAck(PubAck::new(a.pkid))).await;
    // A QoS 1 message to the node is acknowledged.
    let mut plan = Publish::new("plan", QoS::AtLeastOnce, "slots");
    plan.pkid = 7;
    broker.send(Packet::Publish(plan)).await;
    assert_eq!(message(&mut events).await.payload, "slots");
    assert_eq!(broker.read().await, Some(Packet::PubAck(PubAck::new(7))));

    // The broker goes away; what is published meanwhile waits.
    drop(broker);
    assert!(matches!(next(&mut events).await, Err(Error::Closed)));
    client
        .publish("d", QoS::AtLeastOnce, false, "fourth")
        .unwrap();
    let mut broker = Peer::accept(&listener).await;
    broker.accept_connect(true).await;
    connected(&mut events).await;
    let (again, d) = (broker.publish().await, broker.publish().await);
    assert_eq!(
        (&again.topic[..], again.pkid, again.dup, &again.payload[..]),
        ("b", b.pkid, true, &b"second"[..]),
        "the unacknowledged one again, marked DUP"
    );
    assert_eq!((&d.topic[..], d.dup), ("d", false));

    // At the end, a clean DISCONNECT.
    stop.send(()).unwrap();
    assert_eq!(broker.read().await, Some(Packet::Disconnect));
    assert_eq!(broker.read().await, None);
}

#[tokio::test]
async fn a_silent_broker_is_pinged_and_given_up_after_one_and_a_half_keep_alives() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = options(listener.local_addr().unwrap().port(), "node");
    options.keep_alive = Duration::from_secs(1);
    let (_client, connection) = new(options, 10);
    let (mut events, _stop) = pump(connection);
    let mut broker = Peer::accept(&listener).await;
    broker.accept_connect(false).await;
    let start = Instant::now();
    connected(&mut events).await;
    // Idle for a keep-alive: a PINGREQ, answered.
    assert_eq!(broker.read().await, Some(Packet::PingReq));
    let first = start.elapsed();
    assert!(first >= Duration::from_millis(900), "{first:?}");
    broker.send(Packet::PingResp).await;
    // The next one is not answered: given up half a keep-alive later.
    assert_eq!(broker.read().await, Some(Packet::PingReq));
    let silent = next(&mut events).await;
    let given_up = start.elapsed();
    assert!(matches!(silent, Err(Error::Silent(_))), "{silent:?}");
    assert!(
        given_up >= first + Duration::from_millis(1400) && given_up < Duration::from_secs(5),
        "given up after {given_up:?}, the first ping at {first:?}"
    );
}

#[test]
fn a_full_queue_or_a_packet_too_large_is_refused_at_once() {
    let (client, _connection) = new(options(9, "node"), 2);
    // 1 MiB of payload, its topic and packet id: 1 048 581 bytes, and 4
    // of header.
    let big = vec![0; 1 << 20];
    assert_eq!(
        client
            .publish("a", QoS::AtLeastOnce, false, big)
            .unwrap_err()
            .to_string(),
        "a packet of 1048585 bytes, above the 1048576 allowed"
    );
    client.publish("a", QoS::AtLeastOnce, false, "1").unwrap();
    client
        .subscribe_many(["b".to_owned()], QoS::AtLeastOnce)
        .unwrap();
    assert_eq!(
        client
            .publish("a", QoS::AtMostOnce, false, "3")
            .unwrap_err()
            .to_string(),
        "the outgoing queue is full (2 waiting)"
    );
}

#[test]
fn a_topic_longer_than_mqtt_can_carry_is_refused_at_once() {
    let (client, _connection) = new(options(9, "node"), 2);
    let long = "t".repeat(65_536);
    assert_eq!(
        client
            .publish(long.clone(), QoS::AtMostOnce, false, "1")
            .unwrap_err()
            .to_string(),
        "a topic of 65536 bytes: MQTT's are at most 65,535"
    );
    assert_eq!(
        client
            .subscribe_many([long], QoS::AtLeastOnce)
            .unwrap_err()
            .to_string(),
        "a topic of 65536 bytes: MQTT's are at most 65,535"
    );
    // Nothing was queued.
    client.publish("a", QoS::AtMostOnce, false, "1").unwrap();
    client.publish("a", QoS::AtMostOnce, false, "2").unwrap();
}

#[tokio::test]
async fn over_tls_to_mosquitto_trusting_its_ca() {
    let (Ok(url), Ok(ca)) = (
        std::env::var("MQTT_TLS_TEST_URL"),
        std::env::var("MQTT_TEST_CA"),
    ) else {
        assert!(
            std::env::var("CI").is_err(),
            "MQTT_TLS_TEST_URL and MQTT_TEST_CA are not set: run the tests with scripts/test"
        );
        eprintln!(
            "SKIPPED: MQTT_TLS_TEST_URL and MQTT_TEST_CA are not set; run the tests with scripts/test"
        );
        return;
    };
    let address = url
        .strip_prefix("mqtts://")
        .expect("MQTT_TLS_TEST_URL is mqtts://HOST:PORT");
    let (host, port) = address.rsplit_once(':').expect("a port");
    let id = format!("client-tls-{}", std::process::id());
    let mut options = options(port.parse().expect("a port number"), &id);
    options.host = host.to_owned();
    options.tls = Some(tls::configured("[test]", Some(ca.as_ref())).unwrap());
    let (client, connection) = new(options, 10);
    let (mut events, _stop) = pump(connection);
    connected(&mut events).await;
    let topic = format!("fedwatt-test/{id}");
    subscribe(&client, &mut events, &[&topic]).await;
    client
        .publish(&topic, QoS::AtLeastOnce, false, "over TLS")
        .unwrap();
    let got = message(&mut events).await;
    assert_eq!(
        seen(&got),
        (&topic[..], QoS::AtLeastOnce, false, &b"over TLS"[..])
    );
}
