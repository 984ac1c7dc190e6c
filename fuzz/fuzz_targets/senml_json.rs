#![no_main]
//! SenML JSON decoder: see senml::fuzzing::check.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    senml::fuzzing::check(data, senml::Format::Json);
});
