#![no_main]
//! The control loop's pure core on a display event: see control::fuzzing::check_display_event.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    control::fuzzing::check_display_event(data);
});
