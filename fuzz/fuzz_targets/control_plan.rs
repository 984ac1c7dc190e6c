#![no_main]
//! The control loop's pure core on a plan: see control::fuzzing::check_plan.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    control::fuzzing::check_plan(data);
});
