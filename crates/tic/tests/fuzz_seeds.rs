//! The fuzz target's seeds, and the inputs the fuzzer found (kept beside
//! them once fixed), go through the same checks as the fuzz target
//! (`tic::fuzzing::check`) at every test run.
//!
//! The seeds were written by a few lines of Python from the reference's
//! rules, not by this crate's encoder, so the first test also holds the
//! decoder to an independent writer of TIC.

use std::path::Path;

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-seeds/tic_decoder");
    let mut seeds: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect();
    seeds.sort();
    seeds
}

#[test]
fn fuzz_seeds_and_findings_keep_the_invariants() {
    let seeds = seeds();
    assert!(seeds.len() >= 5, "only {} seeds", seeds.len());
    for (name, data) in seeds {
        let outcome = std::panic::catch_unwind(|| tic::fuzzing::check(&data));
        assert!(outcome.is_ok(), "{name} breaks an invariant");
    }
}

#[test]
fn the_seeds_decode_as_their_names_say() {
    let seeds: std::collections::HashMap<_, _> = seeds().into_iter().collect();
    let frames = |name: &str| tic::decode(&seeds[name]);
    for (name, groups) in [("historic-frame", 11), ("standard-frame", 14)] {
        let f = frames(name);
        assert_eq!(f.len(), 2, "{name}");
        assert!(
            f.iter()
                .all(|f| f.is_complete() && f.dropped == 0 && f.groups.len() == groups),
            "{name}: {f:?}"
        );
    }
    let f = frames("standard-corrupted");
    assert_eq!((f[0].groups.len(), f[0].dropped), (13, 1));
    let f = frames("historic-eot");
    assert_eq!(f[0].end, tic::End::Interrupted);
    let f = frames("mixed-modes");
    assert_eq!((f[1].groups.len(), f[1].dropped), (1, 1));
    let f = frames("reference-example");
    assert_eq!(f[0].groups[0].value, tic::Value::Integer(664));
}
