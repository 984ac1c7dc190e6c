//! What the federation keeps in the store — grants, subscriptions, the
//! outbox, the inbox, the audit chain — on SQLite, and on PostgreSQL when
//! POSTGRES_TEST_URL names a server (scripts/test starts one).

use senml::{Format, resolve_slice_indexed};
mod common;

use common::stores;
use store::{Encoding, NewGrant, PeerPack, PushKind, Received, SigningKey};

fn pack(name: &str, from: i64, n: i64) -> Vec<(usize, senml::Record)> {
    let records: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"n":"{name}","t":{},"v":{i},"u":"W"}}"#,
                from + 1800 * i
            )
        })
        .collect();
    resolve_slice_indexed(
        format!("[{}]", records.join(",")).as_bytes(),
        Format::Json,
        0.0,
    )
    .unwrap()
}

fn grant(to: &str, streams: &str) -> NewGrant {
    NewGrant {
        grantee: to.into(),
        streams: streams.parse().unwrap(),
        purpose: Some("study".into()),
        from: None,
        until: None,
        max_history: None,
        min_aggregation: None,
        retention: Some("P1Y".into()),
    }
}

const METER: &str = "urn:dev:prm:30001610071843_consumption/power/active/raw";

#[test]
fn a_subscribed_stream_queues_pushes_in_its_own_transaction_until_revoked() {
    for store in stores("outbox") {
        store.ingest(&pack(METER, 1_700_000_000, 10), None).unwrap();
        let g = store
            .add_grant(&grant("node@b.example", "urn:dev:prm:300016*"))
            .unwrap();
        let info = store.stream(METER).unwrap().unwrap();
        assert_eq!(
            store
                .grant_for("node@b.example", &info, store::Time::now())
                .unwrap()
                .unwrap()
                .id,
            g.id
        );
        assert!(
            store
                .grant_for("other@b.example", &info, store::Time::now())
                .unwrap()
                .is_none()
        );
        store
            .subscribe("node@b.example", METER, g.id, Encoding::Cbor)
            .unwrap();

        // 4,500 new points: three pushes of at most 2,000.
        store
            .ingest(&pack(METER, 1_800_000_000, 4_500), None)
            .unwrap();
        assert_eq!(store.outbox_len().unwrap(), 3);
        let now = store::Time::now().as_micros();
        let pushes = store.claim_pushes(now, 10).unwrap();
        assert_eq!(pushes.len(), 3);
        assert!(pushes.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(
            matches!(&pushes[0].kind, PushKind::Data { stream, from, .. }
            if stream == METER && *from == 1_800_000_000_000_000)
        );
        assert_eq!(pushes[0].encoding, Encoding::Cbor);
        // Claimed pushes come back due only after their retry delay.
        assert!(store.claim_pushes(now, 10).unwrap().is_empty());
        assert_eq!(
            store
                .claim_pushes(now + store::retry_delay(0), 10)
                .unwrap()
                .len(),
            3
        );
        // A receipt from someone else deletes nothing.
        assert!(
            !store
                .push_acknowledged("intruder@b.example", pushes[0].seq)
                .unwrap()
        );
        assert!(
            store
                .push_acknowledged("node@b.example", pushes[0].seq)
                .unwrap()
        );
        assert!(
            !store
                .push_acknowledged("node@b.example", pushes[0].seq)
                .unwrap()
        );
        assert_eq!(store.outbox_len().unwrap(), 2);

        // Revocation drops what is queued, ends the subscription, and
        // queues one notice for the grantee.
        store.revoke_grant(g.id).unwrap();
        assert!(store.subscriptions().unwrap().is_empty());
        let left = store.claim_pushes(now + 3_600_000_000, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].kind, PushKind::Revoked);
        assert_eq!(left[0].peer, "node@b.example");
        store.ingest(&pack(METER, 1_900_000_000, 5), None).unwrap();
        assert_eq!(store.outbox_len().unwrap(), 1, "nothing more is queued");
        assert!(
            store
                .revoke_grant(g.id)
                .unwrap_err()
                .to_string()
                .contains("revoked already")
        );
    }
}

#[test]
fn a_peer_that_acknowledges_puts_off_the_retries_of_what_was_sent_after() {
    for store in stores("progress") {
        store.ingest(&pack(METER, 1_700_000_000, 1), None).unwrap();
        let g = store.add_grant(&grant("node@b.example", METER)).unwrap();
        store
            .subscribe("node@b.example", METER, g.id, Encoding::Cbor)
            .unwrap();
        for day in 1..=3 {
            store
                .ingest(&pack(METER, 1_700_000_000 + day * 86_400, 1), None)
                .unwrap();
        }
        // Sent a minute ago: all three are due again now.
        let now = store::Time::now().as_micros();
        let sent = store.claim_pushes(now - 60_000_000, 10).unwrap();
        let seqs: Vec<i64> = sent.iter().map(|p| p.seq).collect();
        assert_eq!(seqs.len(), 3);
        // The peer acknowledges the second: it is taking in what it was
        // sent, so the third is still in its queue and waits; the first,
        // before it and not acknowledged, was lost and goes again.
        assert!(store.push_acknowledged("node@b.example", seqs[1]).unwrap());
        let due: Vec<i64> = store
            .claim_pushes(store::Time::now().as_micros(), 10)
            .unwrap()
            .iter()
            .map(|p| p.seq)
            .collect();
        assert_eq!(due, [seqs[0]]);
        let later = store::Time::now().as_micros() + store::retry_delay(0) + 1;
        let due: Vec<i64> = store
            .claim_pushes(later, 10)
            .unwrap()
            .iter()
            .map(|p| p.seq)
            .collect();
        assert_eq!(due, [seqs[2]], "its retry comes after a first delay");
    }
}

#[test]
fn pushes_built_are_audited_and_a_dropped_one_ends_its_subscription() {
    for store in stores("built") {
        store.ingest(&pack(METER, 1_700_000_000, 1), None).unwrap();
        let g = store.add_grant(&grant("node@b.example", METER)).unwrap();
        store
            .subscribe("node@b.example", METER, g.id, Encoding::Cbor)
            .unwrap();
        for day in 1..=2 {
            store
                .ingest(&pack(METER, 1_700_000_000 + day * 86_400, 1), None)
                .unwrap();
        }
        let pushes = store
            .claim_pushes(store::Time::now().as_micros(), 10)
            .unwrap();
        assert_eq!(pushes.len(), 2);
        let before = store.audit_entries(1, 100).unwrap().len();
        let may_go = store
            .pushes_built(
                &[(&pushes[0], serde_json::json!({"seq": pushes[0].seq}))],
                &[(&pushes[1], "its grant is no longer in force")],
            )
            .unwrap();
        assert_eq!(may_go, [true]);
        let entries = store.audit_entries(1, 100).unwrap();
        let new: Vec<(&str, Option<&str>)> = entries[before..]
            .iter()
            .map(|e| (e.kind.as_str(), e.peer.as_deref()))
            .collect();
        assert_eq!(
            new,
            [
                ("push", Some("node@b.example")),
                ("refused", Some("node@b.example"))
            ]
        );
        assert!(entries[before + 1].detail.contains("no longer in force"));
        // The sent one waits for its receipt; the dropped one is gone, and
        // so is the subscription: new points queue nothing more.
        assert_eq!(store.outbox_len().unwrap(), 1);
        assert!(store.subscriptions().unwrap().is_empty());
        store
            .ingest(&pack(METER, 1_700_000_000 + 9 * 86_400, 1), None)
            .unwrap();
        assert_eq!(store.outbox_len().unwrap(), 1);
        assert!(
            store
                .push_acknowledged("node@b.example", pushes[0].seq)
                .unwrap()
        );
    }
}

#[test]
fn a_push_built_while_its_grant_is_revoked_is_neither_audited_nor_sent_nor_refused() {
    for store in stores("revoked_while_built") {
        store.ingest(&pack(METER, 1_700_000_000, 1), None).unwrap();
        let g = store.add_grant(&grant("node@b.example", METER)).unwrap();
        store
            .subscribe("node@b.example", METER, g.id, Encoding::Cbor)
            .unwrap();
        store
            .ingest(&pack(METER, 1_700_000_000 + 86_400, 1), None)
            .unwrap();
        let pushes = store
            .claim_pushes(store::Time::now().as_micros(), 10)
            .unwrap();
        assert_eq!(pushes.len(), 1);
        // The owner revokes while the sender builds the push it claimed.
        store.revoke_grant(g.id).unwrap();
        let before = store.audit_entries(1, 100).unwrap().len();
        let may_go = store
            .pushes_built(
                &[(&pushes[0], serde_json::json!({"seq": pushes[0].seq}))],
                &[],
            )
            .unwrap();
        assert_eq!(may_go, [false]);
        assert_eq!(store.audit_entries(1, 100).unwrap().len(), before);
        // Nor does a push built to be dropped, once gone, end the
        // subscription the peer has made since under a new grant.
        let again = store.add_grant(&grant("node@b.example", METER)).unwrap();
        store
            .subscribe("node@b.example", METER, again.id, Encoding::Cbor)
            .unwrap();
        store
            .pushes_built(&[], &[(&pushes[0], "its grant is no longer in force")])
            .unwrap();
        let subscriptions = store.subscriptions().unwrap();
        assert_eq!(subscriptions.len(), 1);
        assert_eq!(subscriptions[0].grant, again.id);
    }
}

#[test]
fn pushes_from_a_peer_are_stored_once_tagged_with_it_and_erased_on_revocation() {
    for store in stores("inbox") {
        let from = |seq| PeerPack {
            peer: "node@a.example",
            seq: Some(seq),
            grant: 7,
            retention: Some("P1Y"),
            payload_hash: "00",
            metadata: &[],
        };
        assert_eq!(
            store
                .ingest_from_peer(&pack(METER, 1_700_000_000, 48), from(1))
                .unwrap(),
            Received::Stored(48)
        );
        assert_eq!(
            store
                .ingest_from_peer(&pack(METER, 1_700_000_000, 48), from(1))
                .unwrap(),
            Received::Duplicate
        );
        assert_eq!(
            store
                .ingest_from_peer(&pack(METER, 1_700_086_400, 48), from(2))
                .unwrap(),
            Received::Stored(48)
        );
        assert_eq!(
            store
                .received_before(&[
                    ("node@a.example", 2),
                    ("node@a.example", 3),
                    ("other@a.example", 1)
                ])
                .unwrap(),
            [true, false, false],
            "a sequence number is seen per peer"
        );
        let info = store.stream(METER).unwrap().unwrap();
        assert_eq!(info.count, 96);
        assert_eq!(info.origin.as_deref(), Some("node@a.example"));
        assert_eq!(info.metadata.retention.as_deref(), Some("P1Y"));
        // Neither a local writer nor another peer may write it.
        let e = store
            .ingest(&pack(METER, 1_600_000_000, 1), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is received from node@a.example"), "{e}");
        let other = PeerPack {
            peer: "node@c.example",
            ..from(3)
        };
        assert!(
            store
                .ingest_from_peer(&pack(METER, 1_600_000_000, 1), other)
                .is_err()
        );
        // Nor is it ever granted onwards.
        store.add_grant(&grant("node@c.example", "*")).unwrap();
        assert!(
            store
                .grant_for("node@c.example", &info, store::Time::now())
                .unwrap()
                .is_none()
        );

        assert_eq!(store.erase_from_peer("node@a.example", 7).unwrap(), 96);
        assert!(store.stream(METER).unwrap().is_none());
    }
}

#[test]
fn the_audit_chain_verifies_and_names_the_first_altered_entry() {
    for store in stores("audit") {
        let key = SigningKey::from_bytes(&[9; 32]);
        let g = store.add_grant(&grant("node@b.example", "*")).unwrap();
        store
            .audit(&[(
                "command",
                Some("node@b.example"),
                serde_json::json!({"records": 3}),
            )])
            .unwrap();
        assert_eq!(store.audit_checkpoint(&key).unwrap(), Some(2));
        assert_eq!(
            store.audit_checkpoint(&key).unwrap(),
            None,
            "signed already"
        );
        store.revoke_grant(g.id).unwrap();
        let report = store.verify_audit(key.verifying_key()).unwrap();
        assert_eq!(report.broken, None);
        assert_eq!((report.entries, report.checkpoints), (3, 1));
        let wrong = SigningKey::from_bytes(&[1; 32]);
        assert_eq!(
            store
                .verify_audit(wrong.verifying_key())
                .unwrap()
                .broken
                .unwrap()
                .0,
            2
        );
        let entries = store.audit_entries(1, 10).unwrap();
        assert_eq!(
            entries.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["grant", "command", "revoke"]
        );
    }
}
