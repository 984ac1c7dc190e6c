//! The fuzz targets' seeds, and the inputs the fuzzers found (kept beside
//! them once fixed), go through the same checks as the fuzz targets
//! (`control::fuzzing`) at every test run.

use std::path::Path;

#[test]
fn fuzz_seeds_and_findings_keep_the_invariants() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-seeds");
    type Check = fn(&[u8]);
    let targets: [(&str, Check); 4] = [
        ("device_message", control::fuzzing::check_device_message),
        ("plan", control::fuzzing::check_plan),
        ("stimulation", control::fuzzing::check_stimulation),
        ("display_event", control::fuzzing::check_display_event),
    ];
    for (target, check) in targets {
        let mut checked = 0;
        for entry in std::fs::read_dir(seeds.join(target)).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} breaks an invariant", path.display());
            checked += 1;
        }
        assert!(checked >= 2, "{target}: only {checked} inputs");
    }
}
