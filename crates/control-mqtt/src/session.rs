//! The MQTT session of the control loop: connecting (again), subscribing
//! to every device's topics and asking each its state, and the loop that
//! takes the broker's messages, the node's requests and the clock's ticks
//! in turn.

use std::time::Duration;

use control::driver::Driver;
use control::signals::Signals;
use rumqttc::QoS;
use tokio::sync::{mpsc, watch};

use crate::client::{self, Event};
use crate::config::{ControlConfig, check};
use crate::engine::Loop;
use crate::handle::{Note, Requests};
use crate::routes::{Replies, Routes};

/// The topic of plans for `equipment`.
pub fn plan_topic(client_id: &str, equipment: &str) -> String {
    format!("fedwatt/{client_id}/plan/{equipment}")
}

/// The topic of stimulations.
pub fn stimulation_topic(client_id: &str) -> String {
    format!("fedwatt/{client_id}/stimulation")
}

/// Now, in µs since the epoch: the control core's clock.
fn now_micros() -> i64 {
    store::Time::now().as_micros()
}

/// Runs the control loop until `shutdown` turns true, taking requests
/// from the [`Handle`](crate::Handle) paired with `requests`.
pub async fn run(
    config: ControlConfig,
    journal: mpsc::Sender<Note>,
    mut requests: Requests,
    mut shutdown: watch::Receiver<bool>,
) -> control::Result<()> {
    check(&config)?;
    let m = &config.mqtt;
    let options = client::Options {
        host: m.host.clone(),
        port: m.port,
        client_id: m.client_id.clone(),
        login: m
            .user
            .clone()
            .map(|user| (user, m.password.clone().unwrap_or_default())),
        tls: m.tls.clone(),
        keep_alive: Duration::from_secs(30),
        // A session the broker keeps while the node is away: plans and
        // stimulations sent meanwhile (QoS 1) are delivered when it is back.
        clean_session: false,
        max_packet: 1 << 20,
    };
    let (client, mut connection) = client::new(options, 65_536);
    let now = now_micros();
    let mut control = Loop {
        client,
        client_id: m.client_id.clone(),
        own_prefix: format!("fedwatt/{}/", m.client_id),
        reply_to: format!("fedwatt/{}/reply", m.client_id),
        equipments: Vec::new(),
        plates: Vec::new(),
        plate_by_name: Default::default(),
        redraw: Vec::new(),
        timezone: config.timezone.clone(),
        signals: Signals::default(),
        sites: config
            .sites
            .iter()
            .map(|s| (s.name.clone(), s.off_peak.clone()))
            .collect(),
        routes: Routes::default(),
        replies: Replies::default(),
        // Ids unique across restarts: a late reply to the previous run's
        // request is not taken for this run's.
        next_id: now as u64,
        scheduled: Vec::new(),
        wake_at: now,
        journal,
        connected: false,
        started: false,
    };
    for e in &config.equipments {
        control.add(now, e)?;
    }
    for d in &config.displays {
        control.add_plate(d);
    }
    tracing::info!(
        "control: {} equipments, broker {}:{}",
        control.equipments.len(),
        m.host,
        m.port
    );
    loop {
        let now = now_micros();
        let pause = Duration::from_micros((control.wake_at - now).clamp(0, 1_000_000) as u64);
        tokio::select! {
            event = connection.poll() => match event {
                Ok(Event::Connected(connack)) => {
                    let kept = if connack.session_present { ", which kept the session" } else { "" };
                    tracing::info!("control: connected to the broker{kept}");
                    control.connected = true;
                    control.subscribe().await;
                    // The first orders go out once the node listens for
                    // their confirmations.
                    if !control.started {
                        control.started = true;
                        let now = now_micros();
                        // What the windows and signals say is known before
                        // the first orders, which follow it.
                        control.follow_signals(now).await;
                        for i in 0..control.equipments.len() {
                            let changes = control.equipments[i].equipment.start(now);
                            control.carry_out(now, i, &changes).await;
                        }
                        control.update_plates().await;
                    }
                }
                Ok(Event::Message(p)) => {
                    control.take(now_micros(), &p.topic, &p.payload, p.retain).await;
                    control.update_plates().await;
                }
                Ok(Event::Subscribed { refused }) => {
                    for filter in refused {
                        tracing::error!("control: the broker refused the subscription to {filter:?}");
                    }
                }
                Err(e) => {
                    if control.connected {
                        tracing::warn!("control: broker connection lost ({e}); reconnecting");
                    } else {
                        tracing::warn!("control: cannot reach the broker ({e}); retrying");
                    }
                    control.connected = false;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            Some(request) = requests.0.recv() => {
                control.serve(now_micros(), request).await;
                control.update_plates().await;
            }
            _ = tokio::time::sleep(pause), if control.started => {
                control.tick(now_micros()).await;
                control.update_plates().await;
            }
            () = node::stop_requested(&mut shutdown) => break,
        }
    }
    connection.disconnect().await;
    Ok(())
}
impl Loop {
    pub(crate) async fn subscribe(&mut self) {
        let mut topics: Vec<String> = self.routes.topics().cloned().collect();
        topics.push(format!("{}/rpc", self.reply_to));
        topics.push(plan_topic(&self.client_id, "+"));
        topics.push(stimulation_topic(&self.client_id));
        for plate in &self.plates {
            topics.extend(plate.hasp.subscriptions());
        }
        self.subscribe_to(topics);
        // Ask every device where it stands: what it says reconciles it.
        for i in 0..self.equipments.len() {
            self.query_devices(i);
        }
    }

    /// The topics of equipment `i`'s devices.
    pub(crate) fn equipment_topics(&self, i: usize) -> Vec<String> {
        let shared_reply = format!("{}/rpc", self.reply_to);
        self.equipments[i]
            .devices
            .iter()
            .flat_map(|d| d.driver.subscriptions())
            .filter(|t| *t != shared_reply)
            .collect()
    }

    pub(crate) fn subscribe_to(&self, mut topics: Vec<String>) {
        topics.sort();
        topics.dedup();
        for chunk in topics.chunks(100) {
            if let Err(e) = self
                .client
                .subscribe_many(chunk.iter().cloned(), QoS::AtLeastOnce)
            {
                tracing::error!("control: subscribing: {e}");
            }
        }
    }

    /// Asks equipment `i`'s devices their state.
    pub(crate) fn query_devices(&mut self, i: usize) {
        let now = now_micros();
        for d in 0..self.equipments[i].devices.len() {
            self.next_id += 1;
            let id = self.next_id;
            if let Some(q) = self.equipments[i].devices[d].driver.query(id) {
                self.replies.sent(id, (i, d), now);
                if let Err(e) = self
                    .client
                    .publish(q.topic, QoS::AtLeastOnce, false, q.payload)
                {
                    tracing::error!("control: asking a device its state: {e}");
                }
            }
        }
    }
}
