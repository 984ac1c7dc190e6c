//! The node's own MQTT broker, with rumqttc clients as devices and
//! programs would connect: routing by wildcard, QoS 1, retained messages,
//! wills, logins, a client id taken over.

use std::time::Duration;

use control_mqtt::broker::{Broker, BrokerAuth};
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, watch};

async fn broker(auth: BrokerAuth) -> (u16, watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(Broker::new(auth).serve(listener, stopped));
    (port, stop)
}

fn options(id: &str, port: u16) -> MqttOptions {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    options
}

/// A client whose received publishes come on the channel; returns once
/// connected (and subscribed to `filters`).
async fn client(
    options: MqttOptions,
    filters: &[&str],
) -> (AsyncClient, mpsc::UnboundedReceiver<rumqttc::Publish>) {
    let (client, mut events) = AsyncClient::new(options, 100);
    for f in filters {
        client.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let mut acks = 0;
    while acks < filters.len().max(1) {
        match events.poll().await.unwrap() {
            Event::Incoming(Packet::SubAck(_)) => acks += 1,
            Event::Incoming(Packet::ConnAck(_)) if filters.is_empty() => acks += 1,
            Event::Incoming(Packet::Publish(p)) => tx.send(p).unwrap(),
            _ => {}
        }
    }
    tokio::spawn(pump(events, tx));
    (client, rx)
}

async fn pump(mut events: EventLoop, tx: mpsc::UnboundedSender<rumqttc::Publish>) {
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if tx.send(p).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<rumqttc::Publish>) -> rumqttc::Publish {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("nothing received in 10 s")
        .unwrap()
}

#[tokio::test]
async fn messages_reach_the_subscribers_of_matching_filters() {
    let (port, _stop) = broker(BrokerAuth::default()).await;
    let (_node, mut node_rx) = client(options("node", port), &["stat/+/RESULT", "tele/#"]).await;
    let (device, _) = client(options("device", port), &[]).await;
    device
        .publish(
            "stat/plug1/RESULT",
            QoS::AtLeastOnce,
            false,
            r#"{"POWER1":"ON"}"#,
        )
        .await
        .unwrap();
    device
        .publish("other/plug1", QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    device
        .publish("tele/plug1/SENSOR", QoS::AtMostOnce, false, "{}")
        .await
        .unwrap();
    let first = next(&mut node_rx).await;
    assert_eq!(first.topic, "stat/plug1/RESULT");
    assert_eq!(first.qos, QoS::AtLeastOnce);
    assert_eq!(&first.payload[..], br#"{"POWER1":"ON"}"#);
    let second = next(&mut node_rx).await;
    assert_eq!(
        (second.topic.as_str(), second.qos),
        ("tele/plug1/SENSOR", QoS::AtMostOnce)
    );
}

#[tokio::test]
async fn retained_messages_greet_new_subscribers_until_cleared() {
    let (port, _stop) = broker(BrokerAuth::default()).await;
    let (device, _) = client(options("plate", port), &[]).await;
    device
        .publish("hasp/plate01/LWT", QoS::AtLeastOnce, true, "online")
        .await
        .unwrap();
    // Published before anyone listens: kept.
    let (_late, mut rx) = loop {
        let (c, mut rx) = client(options("late", port), &["hasp/+/LWT"]).await;
        if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            assert!(p.retain, "flagged as retained");
            assert_eq!(&p.payload[..], b"online");
            break (c, rx);
        }
    };
    assert!(rx.try_recv().is_err());
    // An empty retained message clears it.
    device
        .publish("hasp/plate01/LWT", QoS::AtLeastOnce, true, "")
        .await
        .unwrap();
    let cleared = next(&mut rx).await;
    assert!(cleared.payload.is_empty());
    let (_after, mut after_rx) = client(options("after", port), &["hasp/+/LWT"]).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), after_rx.recv())
            .await
            .is_err(),
        "nothing retained any more"
    );
}

#[tokio::test]
async fn a_client_that_vanishes_leaves_its_will() {
    let (port, _stop) = broker(BrokerAuth::default()).await;
    let (_watcher, mut rx) = client(options("watcher", port), &["shellies/+/online"]).await;
    let mut with_will = options("shelly1", port);
    with_will.set_last_will(LastWill::new(
        "shellies/shelly1/online",
        "false",
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut events) = AsyncClient::new(with_will, 10);
    while !matches!(events.poll().await, Ok(Event::Incoming(Packet::ConnAck(_)))) {}
    // Gone without DISCONNECT: its socket closes.
    drop(events);
    drop(client);
    let will = next(&mut rx).await;
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("shellies/shelly1/online", &b"false"[..])
    );
    // A client that says goodbye leaves none.
    let mut polite = options("shelly2", port);
    polite.set_last_will(LastWill::new(
        "shellies/shelly2/online",
        "false",
        QoS::AtLeastOnce,
        false,
    ));
    let (client, mut events) = AsyncClient::new(polite, 10);
    while !matches!(events.poll().await, Ok(Event::Incoming(Packet::ConnAck(_)))) {}
    client.disconnect().await.unwrap();
    while events.poll().await.is_ok() {}
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_login_is_checked_and_a_client_id_is_taken_over() {
    let auth = BrokerAuth {
        login: Some(("node".into(), "s3cret".into())),
    };
    let (port, _stop) = broker(auth).await;
    let mut wrong = options("intruder", port);
    wrong.set_credentials("node", "guess");
    let (_c, mut events) = AsyncClient::new(wrong, 10);
    match events.poll().await {
        Err(ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, rumqttc::ConnectReturnCode::BadUserNamePassword)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let mut right = options("node", port);
    right.set_credentials("node", "s3cret");
    let (_first, mut first_events) = AsyncClient::new(right.clone(), 10);
    while !matches!(
        first_events.poll().await,
        Ok(Event::Incoming(Packet::ConnAck(_)))
    ) {}
    let (_second, mut second_events) = AsyncClient::new(right, 10);
    while !matches!(
        second_events.poll().await,
        Ok(Event::Incoming(Packet::ConnAck(_)))
    ) {}
    // The first connection is closed by the broker.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if first_events.poll().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the first connection was not closed");
}
