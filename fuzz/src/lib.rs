//! The checks strictly's fuzz targets run, shared with `tests/fuzz_corpus.rs`
//! (which includes `checks.rs` by path) so a corpus replays on stable exactly
//! as it was fuzzed.

pub mod checks;
