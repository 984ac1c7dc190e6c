#![no_main]
//! The Linky TIC decoder on any bytes: see tic::fuzzing::check.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tic::fuzzing::check(data);
});
