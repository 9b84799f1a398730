//! Tests for the format compiler: the lab, every built-in, fast path vs regex, case files.
