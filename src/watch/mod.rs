//! `watch`: follow every selected pod and keep the verdicts current.

pub mod snapshot;
