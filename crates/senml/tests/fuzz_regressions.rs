//! Inputs the fuzzers found (and the RFC fixtures they start from) stay
//! checked forever: each goes through the same invariants as the fuzz
//! targets (`senml::fuzzing::check`).

use std::path::Path;

use senml::Format;

#[test]
fn fuzz_findings_stay_fixed() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut checked = 0;
    for format in Format::ALL {
        let findings =
            std::fs::read_dir(tests.join("fuzz-regressions").join(format.to_string())).unwrap();
        let seeds = std::fs::read_dir(tests.join("rfc8428")).unwrap();
        for entry in findings.chain(seeds) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let data = if name.ends_with(&format!(".{format}.hex")) {
                let hex = std::fs::read_to_string(&path).unwrap();
                let digits: Vec<u8> = hex.bytes().filter(u8::is_ascii_hexdigit).collect();
                digits
                    .chunks(2)
                    .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
                    .collect()
            } else if path.parent().unwrap().ends_with("rfc8428")
                && !name.ends_with(&format!(".{format}"))
            {
                continue;
            } else {
                std::fs::read(&path).unwrap()
            };
            let outcome = std::panic::catch_unwind(|| senml::fuzzing::check(&data, format));
            assert!(outcome.is_ok(), "{} breaks an invariant", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} inputs checked");
}
