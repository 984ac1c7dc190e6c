//! Cooperative projects and their investors, on each backend: what is
//! refused is refused by the store and the database alike, and a refused
//! change leaves nothing behind.

mod common;

use common::stores;
use store::{Error, Investment, Project};

fn school() -> Project {
    Project {
        id: "ecole-jaures".into(),
        title: "Centrale solaire de l'école Jaurès".into(),
        description: "96 m² on the school's roof".into(),
        total_shares: 400,
        share_price: 150.0,
        currency: "EUR".into(),
        panel_area_m2: 96.0,
        production_stream: "ecole-jaures:pv/power".into(),
        maintenance_budget: 1200.0,
        commissioned: "2025-01-01".into(),
    }
}

fn field(e: Error) -> &'static str {
    match e {
        Error::Field { field, .. } => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn a_project_is_added_read_changed_and_removed_with_its_investments() {
    for store in stores("projects_crud") {
        let added = store.add_project(&school()).unwrap();
        assert_eq!(added, school());
        assert_eq!(store.project("ecole-jaures").unwrap(), Some(school()));
        let again = store.add_project(&school()).unwrap_err();
        assert!(matches!(again, Error::Conflict(_)), "{again}");

        let bad = Project {
            share_price: -5.0,
            ..school()
        };
        assert_eq!(field(store.add_project(&bad).unwrap_err()), "share_price");

        let changed = Project {
            title: "Centrale de l'école".into(),
            share_price: 160.5,
            ..school()
        };
        store.update_project(&changed).unwrap();
        assert_eq!(store.projects().unwrap(), vec![changed.clone()]);
        let missing = Project {
            id: "mairie".into(),
            ..school()
        };
        assert!(matches!(
            store.update_project(&missing).unwrap_err(),
            Error::NotFound(_)
        ));

        store.set_investment("ecole-jaures", "alice", 4).unwrap();
        store.set_investment("ecole-jaures", "bruno", 10).unwrap();
        assert_eq!(store.projects_of("alice").unwrap(), vec![changed.clone()]);
        assert!(store.projects_of("chloe").unwrap().is_empty());

        assert!(store.remove_project("ecole-jaures").unwrap());
        assert!(!store.remove_project("ecole-jaures").unwrap());
        assert!(store.projects().unwrap().is_empty());
        // The investments went with the project: a project of the same id
        // starts with none.
        store.add_project(&school()).unwrap();
        assert!(store.investments("ecole-jaures").unwrap().is_empty());
        assert!(store.projects_of("alice").unwrap().is_empty());
    }
}

#[test]
fn the_shares_of_a_project_never_add_up_to_more_than_its_total() {
    for store in stores("projects_shares") {
        store
            .add_project(&Project {
                total_shares: 10,
                ..school()
            })
            .unwrap();
        store.set_investment("ecole-jaures", "alice", 4).unwrap();
        store.set_investment("ecole-jaures", "bruno", 6).unwrap();
        let over = store
            .set_investment("ecole-jaures", "chloe", 1)
            .unwrap_err();
        assert!(over.to_string().contains("0 remain"), "{over}");
        assert_eq!(field(over), "shares");
        // An investor's own shares count once: alice may go from 4 to 3
        // and back to 4, not to 5.
        store.set_investment("ecole-jaures", "alice", 3).unwrap();
        store.set_investment("ecole-jaures", "alice", 4).unwrap();
        assert_eq!(
            field(
                store
                    .set_investment("ecole-jaures", "alice", 5)
                    .unwrap_err()
            ),
            "shares"
        );
        assert_eq!(
            field(
                store
                    .set_investment("ecole-jaures", "alice", 0)
                    .unwrap_err()
            ),
            "shares"
        );
        assert_eq!(
            field(
                store
                    .set_investment("ecole-jaures", "Alice", 1)
                    .unwrap_err()
            ),
            "account"
        );
        assert!(matches!(
            store.set_investment("mairie", "alice", 1).unwrap_err(),
            Error::NotFound(_)
        ));
        assert_eq!(
            store.investments("ecole-jaures").unwrap(),
            [
                Investment {
                    account: "alice".into(),
                    shares: 4
                },
                Investment {
                    account: "bruno".into(),
                    shares: 6
                }
            ]
        );
        assert_eq!(store.shares_of("ecole-jaures", "bruno").unwrap(), 6);
        assert_eq!(store.shares_of("ecole-jaures", "chloe").unwrap(), 0);

        // The total cannot fall below what is held; nothing changes.
        let smaller = Project {
            total_shares: 9,
            ..school()
        };
        assert_eq!(
            field(store.update_project(&smaller).unwrap_err()),
            "total_shares"
        );
        assert_eq!(
            store.project("ecole-jaures").unwrap().unwrap().total_shares,
            10
        );

        assert!(store.remove_investment("ecole-jaures", "bruno").unwrap());
        assert!(!store.remove_investment("ecole-jaures", "bruno").unwrap());
        store.set_investment("ecole-jaures", "chloe", 6).unwrap();
    }
}

#[test]
fn investments_written_at_once_are_checked_one_after_the_other() {
    for store in stores("projects_race") {
        store
            .add_project(&Project {
                total_shares: 10,
                ..school()
            })
            .unwrap();
        // Eight investors ask for 3 shares each at the same moment: only
        // three of them fit in 10.
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    store
                        .set_investment("ecole-jaures", &format!("investor-{i}"), 3)
                        .is_ok()
                })
            })
            .collect();
        let accepted = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(accepted, 3);
        let held: u64 = store
            .investments("ecole-jaures")
            .unwrap()
            .iter()
            .map(|i| i.shares)
            .sum();
        assert_eq!(held, 9);
    }
}
