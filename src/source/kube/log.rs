//! The one Kubernetes log reader: how a log is asked for, how its body
//! becomes lines, and what a failure to open it means.
//!
//! `report`'s one-shot read ([`super::snapshot`]) and `watch`'s follow
//! ([`super::follow`]) both open logs here, so they ask kubelet the same way
//! (the container, `timestamps=true`: the receive time the coverage and the
//! follow's cursor rely on, `previous` for the container that ran before)
//! and cut every body with the one bounded [`LineCutter`].

use std::pin::Pin;

use futures::{AsyncBufRead, AsyncBufReadExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::LogParams;
use kube::{Api, Client};

use crate::source::SourceMeta;
use crate::source::lines::LineCutter;

/// Where a log read starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// The whole log kubelet keeps.
    All,
    /// This many seconds ago (kubelet wants at least 1).
    Seconds(i64),
    /// The whole second holding this time (ns since the epoch): kubelet's
    /// `sinceTime` has second precision, so a reader that resumes skips
    /// what it already counted (see [`super::follow::Dedupe`]).
    SecondOf(i64),
}

/// Which log of a container to read, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRead {
    /// The log of the container that ran before the current one (kubelet keeps one).
    pub previous: bool,
    /// Keep the connection open for new lines.
    pub follow: bool,
    pub since: Since,
}

impl LogRead {
    /// The query kubelet gets for this read of `meta`'s container.
    pub fn params(&self, meta: &SourceMeta) -> LogParams {
        let mut params = LogParams {
            container: Some(meta.container.clone()),
            follow: self.follow,
            previous: self.previous,
            timestamps: true,
            ..Default::default()
        };
        match self.since {
            Since::All => {}
            Since::Seconds(s) => params.since_seconds = Some(s),
            Since::SecondOf(ns) => {
                let second_ms = ns.div_euclid(1_000_000_000) * 1000;
                params.since_time = Timestamp::from_millisecond(second_ms).ok();
            }
        }
        params
    }
}

/// What a log that could not be opened means to its reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenFailure {
    /// HTTP 403: missing RBAC does not heal by retrying (issue 7 item 19).
    Forbidden,
    /// HTTP 404: the pod is gone; there is nothing more to read.
    Gone,
    /// Another 4xx: no log to read yet (the container waits) or any more.
    NoLog,
    /// Anything else (5xx, a dropped connection): retrying may help.
    Transient,
}

impl OpenFailure {
    /// Classifies a failed open.
    pub fn of(e: &kube::Error) -> OpenFailure {
        match e {
            kube::Error::Api(s) if s.code == 403 => OpenFailure::Forbidden,
            kube::Error::Api(s) if s.code == 404 => OpenFailure::Gone,
            kube::Error::Api(s) if (400..500).contains(&s.code) => OpenFailure::NoLog,
            _ => OpenFailure::Transient,
        }
    }
}

/// An open log: its body, read straight into the bounded [`LineCutter`].
pub struct LogBody {
    body: Pin<Box<dyn AsyncBufRead + Send>>,
    /// The whole lines read so far wait here; take them with [`LineCutter::take_chunk`].
    pub cutter: LineCutter,
}

/// Opens one log of `meta`'s container, cutting its body with `cutter`.
pub async fn open(
    client: &Client,
    meta: &SourceMeta,
    read: LogRead,
    cutter: LineCutter,
) -> Result<LogBody, kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &meta.namespace);
    let body = api.log_stream(&meta.pod, &read.params(meta)).await?;
    Ok(LogBody {
        body: Box::pin(body),
        cutter,
    })
}

impl LogBody {
    /// Reads the next piece of the body into the cutter; returns its length (0: the end).
    ///
    /// Cancel-safe (a follow times it out on a stalled stream): nothing is
    /// consumed from the body until it has been pushed into the cutter.
    pub async fn fill(&mut self) -> std::io::Result<usize> {
        // The body's own buffer is read in place: no copy through a 64 KiB
        // buffer per followed pod.
        let bytes = self.body.fill_buf().await?;
        let n = bytes.len();
        self.cutter.push(bytes);
        self.body.as_mut().consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> SourceMeta {
        SourceMeta {
            namespace: "ns".into(),
            pod: "web-0".into(),
            container: "istio-proxy".into(),
            ..SourceMeta::default()
        }
    }

    #[test]
    fn every_read_asks_for_timestamps_of_the_one_container() {
        for since in [Since::All, Since::Seconds(600), Since::SecondOf(1)] {
            for (previous, follow) in [(false, false), (true, false), (false, true)] {
                let p = LogRead {
                    previous,
                    follow,
                    since,
                }
                .params(&meta());
                assert!(p.timestamps);
                assert_eq!(p.container.as_deref(), Some("istio-proxy"));
                assert_eq!((p.previous, p.follow), (previous, follow));
            }
        }
    }

    #[test]
    fn a_resumed_read_starts_at_the_whole_second() {
        let ns = 1_763_636_400_123_456_789;
        let p = LogRead {
            previous: false,
            follow: true,
            since: Since::SecondOf(ns),
        }
        .params(&meta());
        assert_eq!(p.since_seconds, None);
        assert_eq!(
            p.since_time.unwrap().as_millisecond(),
            1_763_636_400_000,
            "kubelet's sinceTime has second precision"
        );
    }
}
