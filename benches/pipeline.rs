//! Benchmarks of the per-line path (filled in with the pipeline).
fn main() {}
