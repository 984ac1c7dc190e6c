#![no_main]
//! The control loop's pure core on a stimulation: see control::fuzzing::check_stimulation.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    control::fuzzing::check_stimulation(data);
});
