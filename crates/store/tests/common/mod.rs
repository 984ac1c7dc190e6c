//! Stores for the tests: SQLite always, and PostgreSQL when
//! POSTGRES_TEST_URL names a server (scripts/test starts one).

use store::Store;

/// A fresh store of each backend, named after `test`.
pub fn stores(test: &str) -> Vec<Store> {
    let dir = std::env::temp_dir().join(format!("fedwatt-store-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut stores = vec![Store::open(None, &dir, "UTC").unwrap()];
    match std::env::var("POSTGRES_TEST_URL") {
        Ok(admin) => {
            let name = format!("fedwatt_store_{test}_{}", std::process::id());
            let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                .unwrap();
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
            let base = admin.rsplit_once('/').unwrap().0;
            stores.push(Store::open(Some(&format!("{base}/{name}")), &dir, "UTC").unwrap());
        }
        Err(_) => assert!(
            std::env::var("CI").is_err(),
            "POSTGRES_TEST_URL is not set: run the tests with scripts/test"
        ),
    }
    stores
}
