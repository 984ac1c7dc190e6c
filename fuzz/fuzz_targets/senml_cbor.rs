#![no_main]
//! SenML CBOR decoder: see senml::fuzzing::check.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    senml::fuzzing::check(data, senml::Format::Cbor);
});
