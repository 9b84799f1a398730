//! Fuzz target: see `strictly_fuzz::checks::format_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strictly_fuzz::checks::format_file(data));
