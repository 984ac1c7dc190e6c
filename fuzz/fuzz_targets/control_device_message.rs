#![no_main]
//! The control loop's pure core on a device message: see control::fuzzing::check_device_message.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    control::fuzzing::check_device_message(data);
});
