//! Fuzz target: see `strictly_fuzz::checks::envelope`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strictly_fuzz::checks::envelope(data));
