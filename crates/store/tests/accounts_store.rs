//! Accounts and sessions on each backend: fields checked whole before
//! anything is stored, passwords verified against their hash, sessions
//! resolved, ended, and gone with their account.

mod common;

use common::stores;
use store::{AccountChange, NewAccount, Role, StreamPattern};

fn alice() -> NewAccount {
    NewAccount {
        name: "alice".into(),
        display_name: "Alice Martin".into(),
        role: Role::Member,
        password: "correct horse battery".into(),
        streams: vec!["urn:dev:prm:3000*".parse().unwrap()],
        consumption_stream: Some("urn:dev:prm:30001_consumption".into()),
    }
}

fn field_of(e: store::Error) -> &'static str {
    match e {
        store::Error::Field { field, .. } => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn accounts_are_added_checked_changed_and_removed() {
    for store in stores("accounts") {
        let added = store.add_account(&alice()).unwrap();
        assert_eq!(added.role, Role::Member);
        assert_eq!(store.accounts().unwrap(), vec![added.clone()]);
        let again = store.add_account(&alice()).unwrap_err();
        assert!(matches!(again, store::Error::Conflict(_)), "{again}");

        for (bad, wanted) in [
            (
                NewAccount {
                    name: "Bob!".into(),
                    ..alice()
                },
                "account",
            ),
            (
                NewAccount {
                    name: "bob".into(),
                    password: "short".into(),
                    ..alice()
                },
                "password",
            ),
            (
                NewAccount {
                    name: "bob".into(),
                    display_name: " ".into(),
                    ..alice()
                },
                "display_name",
            ),
            (
                NewAccount {
                    name: "bob".into(),
                    consumption_stream: Some("a*".into()),
                    ..alice()
                },
                "consumption_stream",
            ),
            (
                NewAccount {
                    name: "bob".into(),
                    streams: vec![StreamPattern::all(), StreamPattern::all()],
                    ..alice()
                },
                "streams",
            ),
        ] {
            assert_eq!(field_of(store.add_account(&bad).unwrap_err()), wanted);
        }
        assert_eq!(
            store.accounts().unwrap().len(),
            1,
            "nothing refused was stored"
        );

        assert!(
            store
                .verify_password("alice", "correct horse battery")
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .verify_password("alice", "wrong horse battery")
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .verify_password("nobody", "correct horse battery")
                .unwrap()
                .is_none()
        );

        let change = AccountChange {
            role: Some(Role::Operator),
            streams: Some(Vec::new()),
            consumption_stream: Some(None),
            password: Some("another long password".into()),
            ..AccountChange::default()
        };
        let changed = store.update_account("alice", &change).unwrap();
        assert_eq!(
            (
                changed.role,
                changed.streams.len(),
                changed.consumption_stream
            ),
            (Role::Operator, 0, None)
        );
        assert_eq!(changed.display_name, "Alice Martin", "kept");
        assert!(
            store
                .verify_password("alice", "another long password")
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .verify_password("alice", "correct horse battery")
                .unwrap()
                .is_none()
        );
        let short = AccountChange {
            display_name: Some("New".into()),
            password: Some("short".into()),
            ..AccountChange::default()
        };
        assert_eq!(
            field_of(store.update_account("alice", &short).unwrap_err()),
            "password"
        );
        assert_eq!(
            store.account("alice").unwrap().unwrap().display_name,
            "Alice Martin"
        );
        let missing = store.update_account("nobody", &change).unwrap_err();
        assert!(matches!(missing, store::Error::NotFound(_)), "{missing}");

        assert!(store.remove_account("alice").unwrap());
        assert!(!store.remove_account("alice").unwrap());
        assert!(store.accounts().unwrap().is_empty());
    }
}

#[test]
fn sessions_resolve_until_deleted_and_go_with_their_account() {
    for store in stores("sessions") {
        store.add_account(&alice()).unwrap();
        let (id, session) = store.create_session("alice").unwrap();
        assert_eq!(id.len(), 43, "32 bytes in base64url without padding");
        assert_eq!(session.expires - session.created, store::SESSION_LIFETIME);
        let (account, resolved) = store.resolve_session(&id).unwrap().unwrap();
        assert_eq!(account.name, "alice");
        assert_eq!(resolved.csrf, session.csrf);
        assert!(store.resolve_session("not-a-session").unwrap().is_none());

        assert!(store.delete_session(&id).unwrap());
        assert!(store.resolve_session(&id).unwrap().is_none());
        assert!(!store.delete_session(&id).unwrap());

        let (id, _) = store.create_session("alice").unwrap();
        let password = AccountChange {
            password: Some("another long password".into()),
            ..AccountChange::default()
        };
        store.update_account("alice", &password).unwrap();
        assert!(
            store.resolve_session(&id).unwrap().is_none(),
            "a new password ends sessions"
        );

        let (id, _) = store.create_session("alice").unwrap();
        store.remove_account("alice").unwrap();
        assert!(store.resolve_session(&id).unwrap().is_none());
        let gone = store.create_session("alice").unwrap_err();
        assert!(matches!(gone, store::Error::NotFound(_)), "{gone}");
    }
}
