//! Fuzz target: see `strictly_fuzz::checks::state`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strictly_fuzz::checks::state(data));
