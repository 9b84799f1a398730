//! Helpers shared by the integration tests; a test file includes them with `mod support;`.
//!
//! - [`fake_apiserver`]: a fake Kubernetes API server on 127.0.0.1 that the
//!   real kube client (and the `strictly` binary) talk to over HTTP.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code, unused_imports)]

pub mod fake_apiserver;

pub use fake_apiserver::{
    FakeCluster, FakeContainer, FakeOwner, FakePod, RecordedRequest, Scenario, kube_fixture,
    wait_until, wait_until_async,
};
