//! `fedwatt import senml`: files stored without the HTTP server, whole or
//! in batches.

mod common;

use common::{Place, backends};

fn pack(records: impl Iterator<Item = String>) -> String {
    format!("[{}]", records.collect::<Vec<_>>().join(","))
}

fn numbers(name: &str, n: usize) -> impl Iterator<Item = String> + '_ {
    (0..n).map(move |i| format!(r#"{{"n":"{name}","t":{},"v":{i}}}"#, 1_704_067_200 + 60 * i))
}

/// `fedwatt stream list` as (name, count).
fn streams(place: &Place) -> Vec<(String, u64)> {
    let out = place.run(&["stream", "list"]);
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            (cells[0].to_owned(), cells[3].parse().unwrap())
        })
        .collect()
}

#[test]
fn a_file_is_stored_in_batches_after_it_is_checked_whole() {
    for backend in backends() {
        let place = Place::new(backend);
        let file = place.dir().join("meter.json");
        std::fs::write(&file, pack(numbers("meter", 250))).unwrap();
        let out = place.run(&["import", "senml", "--batch", "100", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("250 points"));
        assert_eq!(streams(&place), [("meter".to_owned(), 250)]);

        // A bad record late in the file: refused before anything is stored.
        let bad = place.dir().join("bad.json");
        let records = numbers("other", 250).enumerate().map(|(i, r)| {
            if i == 230 {
                r.replace("\"v\":230", "\"v\":\"x\"")
            } else {
                r
            }
        });
        std::fs::write(&bad, pack(records)).unwrap();
        let out = place.run(&["import", "senml", "--batch", "100", bad.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("refused, nothing stored: record 230, field \"v\""),
            "{stderr}"
        );
        assert_eq!(streams(&place), [("meter".to_owned(), 250)]);

        // A refusal only the store can make, in the second batch: the first
        // batch stays stored, and the command says so.
        let text = place.dir().join("text.json");
        std::fs::write(&text, r#"[{"n":"label","t":1704067200,"vs":"on"}]"#).unwrap();
        assert!(
            place
                .run(&["import", "senml", text.to_str().unwrap()])
                .status
                .success()
        );
        let clash = place.dir().join("clash.json");
        let records =
            numbers("third", 150).chain([r#"{"n":"label","t":1704070000,"v":1}"#.to_owned()]);
        std::fs::write(&clash, pack(records)).unwrap();
        let out = place.run(&["import", "senml", "--batch", "100", clash.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains(
                "the 100 points of the batches before were stored: record 150, field \"v\""
            ),
            "{stderr}"
        );
        let third = streams(&place)
            .into_iter()
            .find(|(n, _)| n == "third")
            .unwrap();
        assert_eq!(third.1, 100);
    }
}
