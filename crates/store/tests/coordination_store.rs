//! What the flexibility control keeps in the store — equipments added at
//! run time, each equipment's last plan, the stimulations received — on
//! each backend.

mod common;

use common::stores;
use serde_json::json;
use store::Time;

#[test]
fn equipments_are_added_once_listed_and_removed_with_their_plan() {
    for store in stores("equipments") {
        let config = json!({"kind": "water-heater", "typology": "plug"});
        store.add_equipment("wh", &config).unwrap();
        let again = store.add_equipment("wh", &config).unwrap_err();
        assert!(matches!(again, store::Error::Conflict(_)), "{again}");
        assert_eq!(
            store.add_equipment("a/b", &config).unwrap_err().to_string(),
            "equipment \"a/b\": a name must be non-empty, without / + #"
        );
        let listed = store.equipments().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].name.as_str(), &listed[0].config),
            ("wh", &config)
        );
        store
            .save_plan("wh", &json!({"slots": []}), "api", Time::from_micros(1))
            .unwrap();
        assert!(store.remove_equipment("wh").unwrap());
        assert!(!store.remove_equipment("wh").unwrap());
        assert!(store.plans().unwrap().is_empty(), "its plan went with it");
    }
}

#[test]
fn the_last_plan_of_each_equipment_is_kept() {
    for store in stores("plans") {
        store
            .save_plan(
                "wh",
                &json!({"slots": [[1, 2]]}),
                "mqtt",
                Time::from_micros(10),
            )
            .unwrap();
        store
            .save_plan(
                "wh",
                &json!({"slots": [[3, 4]]}),
                "api",
                Time::from_micros(20),
            )
            .unwrap();
        store
            .save_plan("dw", &json!({"slots": []}), "api", Time::from_micros(30))
            .unwrap();
        let plans = store.plans().unwrap();
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[1].equipment, "wh");
        assert_eq!(plans[1].plan, json!({"slots": [[3, 4]]}));
        assert_eq!((plans[1].source.as_str(), plans[1].received), ("api", 20));
    }
}

#[test]
fn the_stimulations_in_force_are_those_not_ended() {
    for store in stores("stimulations") {
        store
            .save_stimulation(
                &json!({"kind": "shed"}),
                "api",
                Time::from_micros(1),
                Time::from_micros(100),
            )
            .unwrap();
        store
            .save_stimulation(
                &json!({"kind": "consume-now"}),
                "mqtt",
                Time::from_micros(2),
                Time::from_micros(300),
            )
            .unwrap();
        let live = store.stimulations_in_force(Time::from_micros(200)).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].body, json!({"kind": "consume-now"}));
        assert_eq!(live[0].source, "mqtt");
    }
}
