//! Fuzz target: see `strictly_fuzz::checks::line_parser`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strictly_fuzz::checks::line_parser(data));
