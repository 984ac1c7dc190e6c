//! Which device a message is for: by its topic ([`Routes`]), or, for a
//! reply on the node's shared Shelly Gen2 reply topic, by the id of the
//! request it answers ([`Replies`]).

use std::collections::HashMap;

use control::device::CONFIRM_WITHIN;

/// A device of the loop: (equipment, device) indexes.
pub(crate) type At = (usize, usize);

/// Topic → the devices that listen to it.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// Exact topics.
    exact: HashMap<String, Vec<At>>,
    /// Topic filters with wildcards (`+`, `#`), with their device.
    wildcards: Vec<(String, At)>,
}

impl Routes {
    /// Routes `topics` to device `at`, except `shared_reply` (the node's
    /// own reply topic, routed by request id instead).
    pub(crate) fn add(&mut self, at: At, topics: Vec<String>, shared_reply: &str) {
        for topic in topics {
            if topic == shared_reply {
                continue;
            }
            if topic.contains(['+', '#']) {
                self.wildcards.push((topic, at));
            } else {
                self.exact.entry(topic).or_default().push(at);
            }
        }
    }

    /// The devices a message on `topic` is for.
    pub(crate) fn targets(&self, topic: &str) -> Vec<At> {
        let mut targets = self.exact.get(topic).cloned().unwrap_or_default();
        targets.extend(
            self.wildcards
                .iter()
                .filter(|(filter, _)| rumqttc::matches(topic, filter))
                .map(|&(_, at)| at),
        );
        targets
    }

    /// Every topic and filter routed.
    pub(crate) fn topics(&self) -> impl Iterator<Item = &String> {
        self.exact
            .keys()
            .chain(self.wildcards.iter().map(|(t, _)| t))
    }
}

/// The requests sent with an id whose reply comes on the shared reply
/// topic: id → the device asked, and when.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    awaited: HashMap<u64, (At, i64)>,
}

impl Replies {
    /// Request `id` was sent to device `at` at `now` (µs).
    pub(crate) fn sent(&mut self, id: u64, at: At, now: i64) {
        self.awaited.insert(id, (at, now));
    }

    /// The device that request `id` went to, if it is still awaited; the
    /// request is answered then.
    pub(crate) fn answered(&mut self, id: u64) -> Option<At> {
        self.awaited.remove(&id).map(|(at, _)| at)
    }

    /// Forgets the requests sent more than [`CONFIRM_WITHIN`] before `now`:
    /// their device is in communication error by then, and an order it did
    /// not confirm is sent again under a new id. A late reply to one is
    /// refused as a reply to no request.
    pub(crate) fn prune(&mut self, now: i64) {
        self.awaited
            .retain(|_, &mut (_, sent)| now - sent <= CONFIRM_WITHIN);
    }

    /// How many are awaited.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.awaited.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLY: &str = "fedwatt/n/reply/rpc";

    #[test]
    fn a_message_goes_to_every_device_listening_to_its_topic() {
        let mut routes = Routes::default();
        routes.add((0, 0), vec!["stat/plug/POWER1".into(), REPLY.into()], REPLY);
        // A plate's relay output is also a second equipment's device.
        routes.add((1, 0), vec!["stat/plug/POWER1".into()], REPLY);
        routes.add((2, 1), vec!["zigbee2mqtt/finger/#".into()], REPLY);
        assert_eq!(routes.targets("stat/plug/POWER1"), [(0, 0), (1, 0)]);
        assert_eq!(routes.targets("zigbee2mqtt/finger/availability"), [(2, 1)]);
        assert_eq!(
            routes.targets("zigbee2mqtt/finger"),
            [(2, 1)],
            "# matches its parent"
        );
        assert!(routes.targets("stat/plug/POWER2").is_empty());
        // The shared reply topic is routed by request id, not by topic.
        assert!(routes.targets(REPLY).is_empty());
        let mut topics: Vec<&String> = routes.topics().collect();
        topics.sort();
        assert_eq!(topics, ["stat/plug/POWER1", "zigbee2mqtt/finger/#"]);
    }

    #[test]
    fn a_reply_goes_to_the_device_asked_once() {
        let mut replies = Replies::default();
        replies.sent(7, (3, 1), 0);
        replies.sent(8, (4, 0), 0);
        assert_eq!(replies.answered(7), Some((3, 1)));
        assert_eq!(replies.answered(7), None, "a second reply to one request");
        assert_eq!(replies.answered(9), None, "a reply to no request");
        assert_eq!(replies.answered(8), Some((4, 0)));
    }

    #[test]
    fn requests_never_answered_are_forgotten_after_the_confirmation_window() {
        let mut replies = Replies::default();
        // A device that never answers: its order is sent again, under a
        // new id, each time the window passes.
        let mut now = 0;
        for id in 0..100 {
            replies.sent(id, (0, 0), now);
            now += CONFIRM_WITHIN + 1;
            replies.prune(now);
        }
        assert_eq!(replies.len(), 0, "what is never answered does not pile up");
        // One still within its window is kept, and answered.
        replies.sent(200, (0, 0), now);
        replies.prune(now + CONFIRM_WITHIN);
        assert_eq!(replies.answered(200), Some((0, 0)));
    }
}
