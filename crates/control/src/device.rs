//! One device's link with the node: what it was told, whether it obeyed,
//! whether it is there. Pure: the control loop gives it the time, what the
//! device said ([`Observation`]s from its driver) and its timeouts, and
//! publishes the orders it returns.
//!
//! The rules:
//! - an order is confirmed by the device's own answer (its state echo, or
//!   the reply to its request) within [`CONFIRM_WITHIN`];
//! - an order not confirmed in time marks the device in communication
//!   error, and nothing more is sent to it;
//! - when the device shows it is back (online again, or any message from
//!   it), what it should be doing is sent again: its state is reconciled;
//! - a device that announces it has just come online is sent again the
//!   order still waiting for it: it was not there to hear it;
//! - the latest wish wins: an order replaces one still waiting.

use crate::driver::{Observation, Order};
use crate::model::Measured;

/// How long a device has to confirm an order, in microseconds.
pub const CONFIRM_WITHIN: i64 = 5_000_000;

/// An order waiting for its confirmation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pending {
    /// The order.
    pub order: Order,
    /// Its request id.
    pub id: u64,
    /// When it was sent.
    pub sent: i64,
}

/// What the link asks the control loop to do, or tells it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Publish this order (through the device's driver) with this id.
    Send(Order, u64),
    /// The device obeyed this order.
    Confirmed(Order),
    /// The device did not confirm in time, refused, or went offline first:
    /// it is now in communication error.
    Failed(Order),
    /// The device's measured state changed.
    Measured(Measured),
}

/// A device as the node knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceLink {
    /// What it says of itself.
    pub measured: Measured,
    /// The last power it measured, in W.
    pub power: Option<f64>,
    /// What it should be doing (the last order asked for).
    pub wanted: Option<Order>,
    /// The order sent and not yet confirmed.
    pub pending: Option<Pending>,
    /// When `measured` last changed.
    pub since: i64,
    /// When the device last said anything.
    pub heard: Option<i64>,
}

impl DeviceLink {
    /// A device not heard from yet.
    pub fn new(now: i64) -> DeviceLink {
        DeviceLink {
            measured: Measured::Unknown,
            power: None,
            wanted: None,
            pending: None,
            since: now,
            heard: None,
        }
    }

    fn set_measured(&mut self, now: i64, measured: Measured, out: &mut Vec<Outcome>) {
        if self.measured != measured {
            self.measured = measured;
            self.since = now;
            out.push(Outcome::Measured(measured));
        }
    }

    /// Asks for `order`, numbered `id`. Sent at once unless the device is
    /// in communication error; then it waits for the device to come back.
    pub fn order(&mut self, now: i64, order: Order, id: u64) -> Vec<Outcome> {
        self.wanted = Some(order);
        if self.measured == Measured::CommunicationError {
            self.pending = None;
            return Vec::new();
        }
        self.pending = Some(Pending {
            order,
            id,
            sent: now,
        });
        vec![Outcome::Send(order, id)]
    }

    /// Takes what the device said. `next_id` numbers an order sent again
    /// to reconcile a device that came back.
    pub fn observe(
        &mut self,
        now: i64,
        seen: &Observation,
        next_id: impl FnOnce() -> u64,
    ) -> Vec<Outcome> {
        let mut out = Vec::new();
        let was_lost = self.measured == Measured::CommunicationError;
        if *seen != Observation::Available(false) {
            self.heard = Some(now);
        }
        match seen {
            Observation::Available(false) => {
                self.set_measured(now, Measured::CommunicationError, &mut out);
                // Gone before it confirmed: sent again when it is back.
                if let Some(p) = self.pending.take() {
                    out.push(Outcome::Failed(p.order));
                }
                return out;
            }
            Observation::Available(true) => {
                if was_lost || self.measured == Measured::Unknown {
                    self.set_measured(now, Measured::Unknown, &mut out);
                }
            }
            Observation::Power(w) => self.power = Some(*w),
            Observation::Switch(on) => {
                self.set_measured(
                    now,
                    if *on { Measured::On } else { Measured::Off },
                    &mut out,
                );
                if let Some(p) = self.pending
                    && p.order.echo() == *on
                {
                    self.pending = None;
                    out.push(Outcome::Confirmed(p.order));
                }
            }
            Observation::Reply { id, outcome } => {
                if let Some(p) = self.pending
                    && p.id == *id
                {
                    self.pending = None;
                    match outcome {
                        Ok(()) => out.push(Outcome::Confirmed(p.order)),
                        Err(_) => {
                            self.set_measured(now, Measured::CommunicationError, &mut out);
                            out.push(Outcome::Failed(p.order));
                        }
                    }
                }
            }
        }
        // Back from a communication error: send again what it should be
        // doing, unless it already does it.
        if was_lost && self.measured != Measured::CommunicationError {
            let does_it = |o: Order| match self.measured {
                Measured::On => o.echo(),
                Measured::Off => !o.echo(),
                _ => false,
            };
            if let Some(order) = self.wanted
                && !does_it(order)
                && self.pending.is_none()
            {
                let id = next_id();
                self.pending = Some(Pending {
                    order,
                    id,
                    sent: now,
                });
                out.push(Outcome::Send(order, id));
            }
        }
        out
    }

    /// The device just announced it is online (live, not a message the
    /// broker kept): an order still waiting was sent while it was away, so
    /// it is sent again now, numbered by `next_id`, rather than failing
    /// when its time is up.
    pub fn came_online(&mut self, now: i64, next_id: impl FnOnce() -> u64) -> Vec<Outcome> {
        match self.pending.as_mut() {
            Some(p) if p.sent < now => {
                p.id = next_id();
                p.sent = now;
                vec![Outcome::Send(p.order, p.id)]
            }
            _ => Vec::new(),
        }
    }

    /// At `now`: an order unconfirmed for [`CONFIRM_WITHIN`] fails, and
    /// the device is in communication error until it shows it is back. One
    /// that spoke since the order was sent (but did not obey) is there: the
    /// order is sent again at once, numbered by `next_id`.
    pub fn check(&mut self, now: i64, next_id: impl FnOnce() -> u64) -> Vec<Outcome> {
        let mut out = Vec::new();
        if let Some(p) = self.pending
            && now - p.sent >= CONFIRM_WITHIN
        {
            self.pending = None;
            self.set_measured(now, Measured::CommunicationError, &mut out);
            out.push(Outcome::Failed(p.order));
            if self.heard.is_some_and(|t| t > p.sent) {
                let id = next_id();
                self.pending = Some(Pending {
                    order: p.order,
                    id,
                    sent: now,
                });
                out.push(Outcome::Send(p.order, id));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn an_order_is_confirmed_by_the_devices_echo() {
        let mut d = DeviceLink::new(0);
        assert_eq!(d.order(0, Order::On, 1), [Outcome::Send(Order::On, 1)]);
        assert_eq!(
            d.observe(S, &Observation::Switch(false), || 99),
            [Outcome::Measured(Measured::Off)],
            "an echo of the other state does not confirm"
        );
        assert_eq!(
            d.observe(2 * S, &Observation::Switch(true), || 99),
            [
                Outcome::Measured(Measured::On),
                Outcome::Confirmed(Order::On)
            ]
        );
        assert!(
            d.check(60 * S, || 99).is_empty(),
            "nothing left to time out"
        );
    }

    #[test]
    fn a_reply_confirms_or_refuses_its_own_request_only() {
        let mut d = DeviceLink::new(0);
        d.order(0, Order::Off, 7);
        let reply = |id, outcome| Observation::Reply { id, outcome };
        assert!(d.observe(S, &reply(6, Ok(())), || 99).is_empty());
        assert_eq!(
            d.observe(S, &reply(7, Ok(())), || 99),
            [Outcome::Confirmed(Order::Off)]
        );
        d.order(2 * S, Order::On, 8);
        assert_eq!(
            d.observe(3 * S, &reply(8, Err("busy".into())), || 99),
            [
                Outcome::Measured(Measured::CommunicationError),
                Outcome::Failed(Order::On)
            ]
        );
    }

    #[test]
    fn a_device_that_comes_online_after_an_order_is_sent_it_again_at_once() {
        let mut d = DeviceLink::new(0);
        d.order(0, Order::Off, 1);
        // Online in the same instant as the order: it may have heard it.
        assert!(d.came_online(0, || 99).is_empty());
        assert_eq!(d.came_online(S, || 2), [Outcome::Send(Order::Off, 2)]);
        // Confirmed as usual, and nothing times out.
        assert_eq!(
            d.observe(2 * S, &Observation::Switch(false), || 99),
            [
                Outcome::Measured(Measured::Off),
                Outcome::Confirmed(Order::Off)
            ]
        );
        assert!(d.check(CONFIRM_WITHIN + S, || 99).is_empty());
        // Nothing waiting: nothing to send.
        assert!(d.came_online(10 * S, || 99).is_empty());
    }

    #[test]
    fn an_unanswered_order_marks_the_device_lost_and_it_is_reconciled_when_back() {
        let mut d = DeviceLink::new(0);
        d.order(0, Order::On, 1);
        assert!(d.check(CONFIRM_WITHIN - 1, || 99).is_empty());
        assert_eq!(
            d.check(CONFIRM_WITHIN, || 99),
            [
                Outcome::Measured(Measured::CommunicationError),
                Outcome::Failed(Order::On)
            ]
        );
        // Nothing is sent to a lost device; the latest wish is kept.
        assert!(d.order(10 * S, Order::Off, 2).is_empty());
        assert!(
            d.observe(11 * S, &Observation::Power(3.0), || 99)
                .is_empty()
        );
        // It comes back, still on: it is told what it should be doing.
        assert_eq!(
            d.observe(20 * S, &Observation::Switch(true), || 3),
            [
                Outcome::Measured(Measured::On),
                Outcome::Send(Order::Off, 3)
            ]
        );
        assert_eq!(
            d.observe(21 * S, &Observation::Switch(false), || 99),
            [
                Outcome::Measured(Measured::Off),
                Outcome::Confirmed(Order::Off)
            ]
        );
    }

    #[test]
    fn a_device_that_speaks_but_did_not_obey_is_told_again() {
        let mut d = DeviceLink::new(0);
        d.order(0, Order::On, 1);
        // A report that crossed the order, or the order was lost on the way.
        d.observe(S, &Observation::Switch(false), || 99);
        assert_eq!(
            d.check(CONFIRM_WITHIN, || 2),
            [
                Outcome::Measured(Measured::CommunicationError),
                Outcome::Failed(Order::On),
                Outcome::Send(Order::On, 2)
            ]
        );
        assert_eq!(
            d.observe(CONFIRM_WITHIN + S, &Observation::Switch(true), || 99),
            [
                Outcome::Measured(Measured::On),
                Outcome::Confirmed(Order::On)
            ]
        );
    }

    #[test]
    fn a_device_back_online_is_asked_again_unless_it_already_obeys() {
        let mut d = DeviceLink::new(0);
        d.order(0, Order::On, 1);
        assert_eq!(
            d.observe(S, &Observation::Available(false), || 99),
            [
                Outcome::Measured(Measured::CommunicationError),
                Outcome::Failed(Order::On)
            ]
        );
        assert_eq!(
            d.observe(5 * S, &Observation::Available(true), || 2),
            [
                Outcome::Measured(Measured::Unknown),
                Outcome::Send(Order::On, 2)
            ]
        );
        let mut obeys = DeviceLink::new(0);
        obeys.order(0, Order::Off, 1);
        obeys.observe(S, &Observation::Switch(false), || 99);
        obeys.observe(2 * S, &Observation::Available(false), || 99);
        assert_eq!(
            obeys.observe(3 * S, &Observation::Switch(false), || 5),
            [Outcome::Measured(Measured::Off)],
            "it already does what it should"
        );
    }
}
