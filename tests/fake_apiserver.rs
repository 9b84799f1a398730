//! Self-tests of the fake Kubernetes API server in `tests/support`: the real
//! kube client (and its `watcher`) against it, on `fixtures/kube/istioinaction.yaml`.

mod support;

use std::pin::Pin;
use std::time::Duration;

use futures::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, LogParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_pods};
use kube::{Client, ResourceExt};
use support::{FakeCluster, FakeContainer, FakePod, kube_fixture, wait_until_async};

const NS: &str = "istioinaction";
const X2X4Z: &str = "web-api-7d9f8c6b5-x2x4z";
const Q9W8Z: &str = "web-api-7d9f8c6b5-q9w8z";
const PATIENCE: Duration = Duration::from_secs(5);

fn lab() -> FakeCluster {
    FakeCluster::start(&kube_fixture("istioinaction.yaml"))
}

/// The next item of `stream`, failing the test after [`PATIENCE`].
async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("timed out waiting for the next item")
        .expect("stream ended")
}

fn proxy_logs() -> LogParams {
    LogParams {
        container: Some("istio-proxy".into()),
        timestamps: true,
        ..LogParams::default()
    }
}

async fn read_log(api: &Api<Pod>, pod: &str, params: &LogParams) -> kube::Result<String> {
    let mut reader = Box::pin(api.log_stream(pod, params).await?);
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .await
        .expect("read log body");
    Ok(text)
}

type Lines = Pin<Box<dyn Stream<Item = std::io::Result<String>> + Send>>;

async fn follow(api: &Api<Pod>, pod: &str, params: &LogParams) -> Lines {
    let reader: Pin<Box<dyn AsyncBufRead + Send>> =
        Box::pin(api.log_stream(pod, params).await.expect("open follow"));
    reader.lines().boxed()
}

fn api_error(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(status) => status,
        other => panic!("expected kube::Error::Api, got {other:?}"),
    }
}

#[tokio::test]
async fn lists_pods_with_label_selectors() {
    let cluster = lab();
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);

    let web_api = pods
        .list(&ListParams::default().labels("app=web-api"))
        .await
        .unwrap();
    let names: Vec<String> = web_api.items.iter().map(|p| p.name_any()).collect();
    assert_eq!(names, [Q9W8Z, X2X4Z]);
    let x2x4z = &web_api.items[1];
    let owner = &x2x4z.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("ReplicaSet", "web-api-7d9f8c6b5", Some(true))
    );
    let status = x2x4z.status.as_ref().unwrap();
    assert_eq!(status.pod_ip.as_deref(), Some("10.44.1.11"));
    let proxy = status
        .container_statuses
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.name == "istio-proxy")
        .unwrap();
    let started = proxy.state.as_ref().unwrap().running.as_ref().unwrap();
    assert_eq!(
        started.started_at.as_ref().unwrap().0.to_string(),
        "2026-11-19T08:00:00Z"
    );
    assert!(web_api.metadata.resource_version.is_some());

    let all: Api<Pod> = Api::all(client);
    let count = |selector: &'static str| {
        let all = all.clone();
        async move {
            let list = all
                .list(&ListParams::default().labels(selector))
                .await
                .unwrap();
            list.items.iter().map(|p| p.name_any()).collect::<Vec<_>>()
        }
    };
    assert_eq!(count("app=web-api,version=v1").await.len(), 2);
    assert_eq!(
        count("app in (catalog,sleep)").await,
        ["sleep-6c8f5b9d7-q2x4z", "catalog-0"]
    );
    assert_eq!(count("app!=web-api").await.len(), 2);
    assert_eq!(count("app=web-api,version=v2").await.len(), 0);
    assert_eq!(count("").await.len(), 4);

    let by_field = all
        .list(&ListParams::default().fields("status.podIP=10.44.0.7"))
        .await
        .unwrap();
    assert_eq!(by_field.items.len(), 1);
    let err = all
        .list(&ListParams::default().fields("spec.bogus=1"))
        .await
        .unwrap_err();
    assert_eq!(api_error(err).code, 400);

    let lists: Vec<_> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.is_list())
        .collect();
    assert_eq!(lists[0].path, "/api/v1/namespaces/istioinaction/pods");
    assert_eq!(lists[0].param("labelSelector"), Some("app=web-api"));
    assert_eq!(lists[1].path, "/api/v1/pods");
}

#[tokio::test]
async fn pages_with_limit_and_continue() {
    let cluster = lab();
    let all: Api<Pod> = Api::all(cluster.client().await);
    let first = all.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(first.items.len(), 3);
    let token = first.metadata.continue_.clone().expect("a continue token");
    let rest = all
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.metadata.continue_, None);
    assert_eq!(
        rest.metadata.resource_version,
        first.metadata.resource_version
    );
}

#[tokio::test]
async fn gets_a_pod_and_404s_an_unknown_one() {
    let cluster = lab();
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let sleep = pods.get("sleep-6c8f5b9d7-q2x4z").await.unwrap();
    let containers: Vec<_> = sleep
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(containers, ["sleep"]);
    assert_eq!(sleep.status.unwrap().pod_ip.as_deref(), Some("10.44.0.7"));

    let status = api_error(pods.get("nope").await.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "pods \"nope\" not found");
}

#[tokio::test]
async fn watcher_sees_adds_deletes_restarts_and_relists_after_410() {
    let cluster = lab();
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, NS);
    let mut events = watch_pods(pods, watcher::Config::default())
        .default_backoff()
        .boxed();

    async fn initial_names<S>(events: &mut S) -> Vec<String>
    where
        S: Stream<Item = Result<Event<Pod>, watcher::Error>> + Unpin,
    {
        assert!(matches!(next(events).await, Ok(Event::Init)));
        let mut names = Vec::new();
        loop {
            match next(events).await {
                Ok(Event::InitApply(pod)) => names.push(pod.name_any()),
                Ok(Event::InitDone) => return names,
                other => panic!("unexpected event during the initial list: {other:?}"),
            }
        }
    }
    assert_eq!(
        initial_names(&mut events).await,
        ["catalog-0", Q9W8Z, X2X4Z]
    );

    let new_pod = "web-api-7d9f8c6b5-n7k2p";
    cluster.add_pod(
        FakePod::new(NS, new_pod)
            .label("app", "web-api")
            .owner("ReplicaSet", "web-api-7d9f8c6b5")
            .pod_ip("10.44.1.30")
            .container(FakeContainer::new("istio-proxy").started_at("2026-11-20T12:00:00Z")),
    );
    match next(&mut events).await {
        Ok(Event::Apply(pod)) => assert_eq!(pod.name_any(), new_pod),
        other => panic!("expected the added pod, got {other:?}"),
    }

    cluster.delete_pod(NS, new_pod);
    match next(&mut events).await {
        Ok(Event::Apply(pod)) => assert!(pod.metadata.deletion_timestamp.is_some()),
        other => panic!("expected the pod marked for deletion, got {other:?}"),
    }
    match next(&mut events).await {
        Ok(Event::Delete(pod)) => assert_eq!(pod.name_any(), new_pod),
        other => panic!("expected the deletion, got {other:?}"),
    }

    cluster.expire_watches();
    match next(&mut events).await {
        Err(watcher::Error::WatchError(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert!(status.message.starts_with("too old resource version"));
        }
        other => panic!("expected a 410 watch error, got {other:?}"),
    }
    assert_eq!(
        initial_names(&mut events).await,
        ["catalog-0", Q9W8Z, X2X4Z]
    );

    cluster.restart_container(NS, "catalog-0", "istio-proxy");
    match next(&mut events).await {
        Ok(Event::Apply(pod)) => {
            let statuses = pod.status.unwrap().container_statuses.unwrap();
            let proxy = statuses.iter().find(|c| c.name == "istio-proxy").unwrap();
            assert_eq!(proxy.restart_count, 2);
            assert!(proxy.last_state.as_ref().unwrap().terminated.is_some());
        }
        other => panic!("expected the restart, got {other:?}"),
    }

    let requests = cluster.requests();
    let lists: Vec<_> = requests.iter().filter(|r| r.is_list()).collect();
    let watches: Vec<_> = requests.iter().filter(|r| r.is_watch()).collect();
    assert_eq!(lists.len(), 2, "one list, and one re-list after the 410");
    assert_eq!(lists[0].param("limit"), Some("500"));
    assert_eq!(lists[0].param("resourceVersion"), None);
    assert!(watches.len() >= 2);
    for watch in &watches {
        assert_eq!(watch.param("allowWatchBookmarks"), Some("true"));
        assert_eq!(watch.param("timeoutSeconds"), Some("290"));
        assert!(watch.param("resourceVersion").is_some_and(|rv| rv != "0"));
    }
}

#[tokio::test]
async fn watcher_with_streaming_lists_and_a_label_selector() {
    let cluster = lab();
    let pods: Api<Pod> = Api::all(cluster.client().await);
    let config = watcher::Config::default()
        .labels("app=web-api")
        .streaming_lists();
    let mut events = watch_pods(pods, config).default_backoff().boxed();
    assert!(matches!(next(&mut events).await, Ok(Event::Init)));
    let mut names = Vec::new();
    loop {
        match next(&mut events).await {
            Ok(Event::InitApply(pod)) => names.push(pod.name_any()),
            Ok(Event::InitDone) => break,
            other => panic!("unexpected event: {other:?}"),
        }
    }
    assert_eq!(names, [Q9W8Z, X2X4Z]);
    let watch = cluster
        .requests()
        .into_iter()
        .find(|r| r.is_watch())
        .unwrap();
    assert_eq!(watch.param("sendInitialEvents"), Some("true"));
    assert_eq!(watch.param("resourceVersionMatch"), Some("NotOlderThan"));
    assert_eq!(watch.param("resourceVersion"), Some("0"));
    assert_eq!(watch.param("labelSelector"), Some("app=web-api"));
}

#[tokio::test]
async fn raw_watch_sends_bookmarks_and_ends_at_its_timeout() {
    let cluster = lab();
    cluster.set_bookmark_interval(Duration::from_millis(50));
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let params = WatchParams::default().timeout(1);
    let mut stream = pods.watch(&params, "0").await.unwrap().boxed();
    match next(&mut stream).await.unwrap() {
        WatchEvent::Added(pod) => assert_eq!(pod.name_any(), "sleep-6c8f5b9d7-q2x4z"),
        other => panic!("expected ADDED, got {other:?}"),
    }
    let mut bookmarks = 0;
    while let Some(event) = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the watch ends at timeoutSeconds")
    {
        match event.unwrap() {
            WatchEvent::Bookmark(bookmark) => {
                assert!(!bookmark.metadata.resource_version.is_empty());
                bookmarks += 1;
            }
            other => panic!("expected only bookmarks, got {other:?}"),
        }
    }
    assert!(bookmarks >= 2, "bookmarks: {bookmarks}");
}

#[tokio::test]
async fn log_stream_serves_timestamped_lines_since_and_previous() {
    let cluster = lab();
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, NS);

    let text = read_log(&pods, X2X4Z, &proxy_logs()).await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 11);
    assert!(
        lines[0].starts_with("2026-11-20T11:30:00.0"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(r#" [2026-11-20T11:30:00.000Z] "GET / HTTP/1.1" 200 "#));
    assert!(text.ends_with("audit_flag: \"false\"\n"));
    assert!(lines.iter().any(|l| {
        l.contains(r#"mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag: "true""#)
    }));

    let since = LogParams {
        since_time: Some("2026-11-20T11:50:00Z".parse::<Timestamp>().unwrap()),
        ..proxy_logs()
    };
    let recent = read_log(&pods, X2X4Z, &since).await.unwrap();
    assert_eq!(recent.lines().count(), 3);
    assert!(
        recent
            .lines()
            .all(|l| l.as_bytes()[..20] >= b"2026-11-20T11:50:00Z"[..])
    );

    let last_ten_minutes = LogParams {
        since_seconds: Some(600),
        ..proxy_logs()
    };
    assert_eq!(
        read_log(&pods, X2X4Z, &last_ten_minutes).await.unwrap(),
        recent
    );
    cluster.set_now("2026-11-20T12:10:00Z");
    assert_eq!(read_log(&pods, X2X4Z, &last_ten_minutes).await.unwrap(), "");

    let tail = LogParams {
        tail_lines: Some(2),
        timestamps: false,
        ..proxy_logs()
    };
    let last_two = read_log(&pods, X2X4Z, &tail).await.unwrap();
    assert_eq!(last_two.lines().count(), 2);
    assert!(last_two.starts_with("[2026-11-20T11:56:22.617Z]"));

    let previous = LogParams {
        previous: true,
        ..proxy_logs()
    };
    let old = read_log(&pods, "catalog-0", &previous).await.unwrap();
    assert_eq!(old.lines().count(), 9);
    assert!(
        old.lines()
            .last()
            .unwrap()
            .ends_with("Status server has successfully terminated")
    );
    let err = read_log(&pods, X2X4Z, &previous).await.unwrap_err();
    let status = api_error(err);
    assert_eq!(status.code, 400);
    assert_eq!(
        status.message,
        format!("previous terminated container \"istio-proxy\" in pod \"{X2X4Z}\" not found")
    );

    let log_requests: Vec<_> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.is_log())
        .collect();
    assert_eq!(log_requests[0].param("container"), Some("istio-proxy"));
    assert_eq!(log_requests[0].param("timestamps"), Some("true"));
    assert_eq!(
        log_requests[1].param("sinceTime"),
        Some("2026-11-20T11:50:00Z")
    );
    assert_eq!(log_requests[2].param("sinceSeconds"), Some("600"));
    assert!(
        log_requests
            .iter()
            .any(|r| r.param("previous") == Some("true"))
    );
}

#[tokio::test]
async fn follow_receives_appended_lines_and_ends_on_end_follows() {
    let cluster = lab();
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, NS);
    let params = LogParams {
        follow: true,
        since_time: Some("2026-11-20T11:59:00Z".parse::<Timestamp>().unwrap()),
        ..proxy_logs()
    };
    let mut lines = follow(&pods, X2X4Z, &params).await;
    assert!(
        next(&mut lines)
            .await
            .unwrap()
            .contains("[2026-11-20T11:59:51.893Z]")
    );
    assert_eq!(cluster.open_follows(NS, X2X4Z), 1);

    cluster.append_log(
        NS,
        "web-api-7d9f8c6b5-x2x4z",
        "istio-proxy",
        &[
            "2026-11-20T12:00:01.5Z first appended",
            "2026-11-20T12:00:02.000000001Z second appended",
        ],
    );
    assert_eq!(
        next(&mut lines).await.unwrap(),
        "2026-11-20T12:00:01.5Z first appended"
    );
    assert_eq!(
        next(&mut lines).await.unwrap(),
        "2026-11-20T12:00:02.000000001Z second appended"
    );

    cluster.end_follows(NS, X2X4Z);
    let end = tokio::time::timeout(PATIENCE, lines.next()).await.unwrap();
    assert!(end.is_none(), "expected EOF, got {end:?}");
    assert_eq!(cluster.open_follows(NS, X2X4Z), 0);
}

#[tokio::test]
async fn stalled_follow_gets_nothing_until_ended() {
    let cluster = lab();
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, NS);
    let params = LogParams {
        follow: true,
        tail_lines: Some(0),
        ..proxy_logs()
    };
    let mut lines = follow(&pods, Q9W8Z, &params).await;
    cluster.stall_follows(NS, Q9W8Z);
    cluster.append_log(NS, Q9W8Z, "istio-proxy", &["2026-11-20T12:00:01Z lost"]);
    let quiet = tokio::time::timeout(Duration::from_millis(100), lines.next()).await;
    assert!(
        quiet.is_err(),
        "a stalled follow must stay silent, got {quiet:?}"
    );
    assert_eq!(cluster.open_follows(NS, Q9W8Z), 1);

    // A new follow is not stalled: it reads the appended line.
    let mut fresh = follow(
        &pods,
        Q9W8Z,
        &LogParams {
            tail_lines: Some(1),
            ..params.clone()
        },
    )
    .await;
    assert_eq!(next(&mut fresh).await.unwrap(), "2026-11-20T12:00:01Z lost");

    cluster.end_follows(NS, Q9W8Z);
    assert!(next_or_eof(&mut lines).await.is_none());
    assert!(next_or_eof(&mut fresh).await.is_none());
}

async fn next_or_eof(lines: &mut Lines) -> Option<std::io::Result<String>> {
    tokio::time::timeout(PATIENCE, lines.next())
        .await
        .expect("timed out")
}

#[tokio::test]
async fn deleting_a_pod_or_restarting_its_container_ends_follows() {
    let cluster = lab();
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, NS);
    let params = LogParams {
        follow: true,
        tail_lines: Some(0),
        ..proxy_logs()
    };

    let mut catalog = follow(&pods, "catalog-0", &params).await;
    cluster.set_now("2026-11-20T12:00:30Z");
    cluster.restart_container(NS, "catalog-0", "istio-proxy");
    assert!(next_or_eof(&mut catalog).await.is_none());
    // The old log is now `previous`; the new container's log starts empty.
    assert_eq!(
        read_log(&pods, "catalog-0", &proxy_logs()).await.unwrap(),
        ""
    );
    let previous = LogParams {
        previous: true,
        ..proxy_logs()
    };
    let old = read_log(&pods, "catalog-0", &previous).await.unwrap();
    assert!(
        old.lines()
            .last()
            .unwrap()
            .contains("[2026-11-20T11:58:59.131Z]")
    );
    let pod = cluster.pod(NS, "catalog-0").unwrap();
    let proxy = &pod["status"]["containerStatuses"][1];
    assert_eq!(proxy["restartCount"], 2);
    assert_eq!(
        proxy["state"]["running"]["startedAt"],
        "2026-11-20T12:00:30Z"
    );

    let mut web = follow(&pods, X2X4Z, &params).await;
    cluster.delete_pod(NS, X2X4Z);
    assert!(next_or_eof(&mut web).await.is_none());
    let status = api_error(read_log(&pods, X2X4Z, &proxy_logs()).await.unwrap_err());
    assert_eq!(status.code, 404);
}

#[tokio::test]
async fn forbidden_surfaces_as_api_error_403() {
    let cluster = lab();
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, NS);
    cluster.forbid("get", "pods/log", Some(NS));
    let status = api_error(read_log(&pods, X2X4Z, &proxy_logs()).await.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        format!(
            "pods \"{X2X4Z}\" is forbidden: User \"system:serviceaccount:strictly:strictly\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"istioinaction\""
        )
    );
    assert_eq!(status.details.as_ref().unwrap().name, X2X4Z);

    cluster.forbid("list", "pods", None);
    let all: Api<Pod> = Api::all(cluster.client().await);
    let status = api_error(all.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(status.code, 403);
    assert_eq!(
        status.message,
        "pods is forbidden: User \"system:serviceaccount:strictly:strictly\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
    );
    // Listing in a namespace is still allowed.
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );

    cluster.allow_all();
    assert!(read_log(&pods, X2X4Z, &proxy_logs()).await.is_ok());
}

#[tokio::test]
async fn log_errors_carry_kubelet_messages() {
    let cluster = lab();
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);

    cluster.waiting_to_start(NS, Q9W8Z, "istio-proxy");
    let status = api_error(read_log(&pods, Q9W8Z, &proxy_logs()).await.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        status.message,
        format!(
            "container \"istio-proxy\" in pod \"{Q9W8Z}\" is waiting to start: PodInitializing"
        )
    );

    let default: Api<Pod> = Api::namespaced(client, "default");
    let status = api_error(
        read_log(&default, "sleep-6c8f5b9d7-q2x4z", &proxy_logs())
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 400);
    assert_eq!(
        status.message,
        "container istio-proxy is not valid for pod sleep-6c8f5b9d7-q2x4z"
    );

    let no_container = LogParams::default();
    let status = api_error(read_log(&pods, X2X4Z, &no_container).await.unwrap_err());
    assert_eq!(
        status.message,
        format!(
            "a container name must be specified for pod {X2X4Z}, choose one of: [web-api istio-proxy]"
        )
    );
}

#[tokio::test]
async fn injected_failures_are_one_shot_and_kube_retries_429_503() {
    let cluster = lab();
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, NS);
    cluster.fail_next("/log", 500);
    let status = api_error(read_log(&pods, X2X4Z, &proxy_logs()).await.unwrap_err());
    assert_eq!(
        (status.code, status.reason.as_str()),
        (500, "InternalError")
    );
    assert!(read_log(&pods, X2X4Z, &proxy_logs()).await.is_ok());

    // kube 5 retries 429, 503 and 504 itself (honouring Retry-After): the caller sees success.
    cluster.clear_requests();
    cluster.fail_next("/pods?", 503);
    cluster.fail_next("/pods?", 429);
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );
    assert_eq!(cluster.requests().len(), 3);
}

#[tokio::test]
async fn log_lines_keep_invalid_utf8_bytes() {
    let cluster = lab();
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, NS);
    cluster.append_log_bytes(
        NS,
        Q9W8Z,
        "istio-proxy",
        "2026-11-20T12:00:01Z",
        b"bad \xff\xfe byte",
    );
    let params = LogParams {
        tail_lines: Some(1),
        ..proxy_logs()
    };
    let mut reader = Box::pin(pods.log_stream(Q9W8Z, &params).await.unwrap());
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).await.unwrap();
    assert_eq!(bytes, b"2026-11-20T12:00:01Z bad \xff\xfe byte\n");
}

#[tokio::test]
async fn kubeconfig_file_contexts() {
    let cluster = FakeCluster::empty();
    let dir = tempfile::tempdir().unwrap();
    let path = cluster.kubeconfig_with_namespace(dir.path(), NS);
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
        .await
        .unwrap();
    assert_eq!(
        config.cluster_url.to_string(),
        format!("{}/", cluster.url())
    );
    assert_eq!(config.default_namespace, NS);
    let client = Client::try_from(config).unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client);
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let other = kube::config::KubeConfigOptions {
        context: Some("other".into()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &other)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::all(Client::try_from(config).unwrap());
    let err = pods.list(&ListParams::default()).await.unwrap_err();
    assert!(!matches!(err, kube::Error::Api(_)), "{err:?}");
}

#[test]
fn serves_plain_threads_without_a_runtime() {
    let cluster = lab();
    cluster.add_pod(FakePod::from_yaml(
        "
namespace: istioinaction
name: bare
podIP: 10.44.9.9
containers:
  - name: istio-proxy
    log: |
      2026-11-20T12:00:00Z hello
",
    ));
    let pod = cluster.pod(NS, "bare").unwrap();
    assert_eq!(pod["metadata"].get("ownerReferences"), None);
    assert_eq!(pod["status"]["podIP"], "10.44.9.9");
    assert!(support::wait_until(Duration::from_secs(1), || cluster
        .open_watches()
        == 0));
    assert_eq!(cluster.now(), "2026-11-20T12:00:00Z");
}

#[tokio::test]
async fn unauthenticated_requests_get_401() {
    let cluster = FakeCluster::empty();
    let mut config = kube::Config::new(cluster.url().parse().unwrap());
    config.default_namespace = NS.into();
    let pods: Api<Pod> = Api::default_namespaced(Client::try_from(config).unwrap());
    let status = api_error(pods.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(status.code, 401);
    assert!(wait_until_async(PATIENCE, || !cluster.requests().is_empty()).await);
}

/// Sends one raw HTTP/1.1 GET and returns what arrives until `done` holds for it (or the server closes).
fn raw_get(cluster: &FakeCluster, path: &str, done: impl Fn(&str) -> bool) -> String {
    use std::io::{Read, Write};
    let addr = cluster.url().trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: fake\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        support::fake_apiserver::TOKEN
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&String::from_utf8_lossy(&seen)) {
        match stream.read(&mut buf).unwrap() {
            0 => break,
            n => seen.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn raw_wire_format_of_watches_logs_and_errors() {
    let cluster = lab();
    let watch = raw_get(
        &cluster,
        "/api/v1/namespaces/default/pods?watch=1&allowWatchBookmarks=true",
        |seen| seen.contains("\"BOOKMARK\""),
    );
    let head = watch.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{watch}");
    assert!(
        head.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{watch}"
    );
    assert!(
        head.contains("\r\ncontent-type: application/json\r\n"),
        "{watch}"
    );
    assert!(watch.contains(r#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"creationTimestamp":"2026-11-19T07:58:10Z""#));
    assert!(watch.contains(r#"{"type":"BOOKMARK","object":{"apiVersion":"v1","kind":"Pod","metadata":{"creationTimestamp":null,"resourceVersion":""#));

    let log = raw_get(
        &cluster,
        "/api/v1/namespaces/istioinaction/pods/catalog-0/log?container=istio-proxy&previous=true&tailLines=1",
        |_| false,
    );
    assert!(
        log.to_ascii_lowercase()
            .contains("\r\ncontent-type: text/plain\r\n"),
        "{log}"
    );
    assert!(
        log.contains("\tinfo\tStatus server has successfully terminated\n"),
        "{log}"
    );
    assert!(
        !log.contains("2026-11-20T11:09:12.480112934Z"),
        "no timestamps unless asked: {log}"
    );

    let missing = raw_get(&cluster, "/api/v1/namespaces/default/pods/nope", |_| false);
    assert!(
        missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{missing}"
    );
    assert!(missing.ends_with(
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"nope\" not found","reason":"NotFound","details":{"kind":"pods","name":"nope"},"code":404}"#
    ), "{missing}");
}

#[tokio::test]
async fn metadata_only_lists() {
    let cluster = lab();
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, NS);
    let list = pods
        .list_metadata(&ListParams::default().labels("app=web-api"))
        .await
        .unwrap();
    let names: Vec<String> = list.items.iter().map(|p| p.name_any()).collect();
    assert_eq!(names, [Q9W8Z, X2X4Z]);
    assert_eq!(
        list.items[0].metadata.labels.as_ref().unwrap()["app"],
        "web-api"
    );
}

#[tokio::test]
async fn native_sidecar_crash_loop_and_limit_bytes() {
    let cluster = FakeCluster::empty();
    cluster.add_pod(
        FakePod::new(NS, "native-0")
            .container(FakeContainer::new("app"))
            .container(FakeContainer {
                init: true,
                ..FakeContainer::new("istio-proxy")
                    .started_at("2026-11-20T11:00:00Z")
                    .waiting("CrashLoopBackOff")
                    .previous_lines(&[
                        "2026-11-20T11:00:01Z before the crash",
                        "2026-11-20T11:00:02Z crashed",
                    ])
            }),
    );
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, NS);
    let pod = pods.get("native-0").await.unwrap();
    let init = &pod.spec.as_ref().unwrap().init_containers.as_ref().unwrap()[0];
    assert_eq!(
        (init.name.as_str(), init.restart_policy.as_deref()),
        ("istio-proxy", Some("Always"))
    );
    let status = pod.status.unwrap();
    let proxy = &status.init_container_statuses.unwrap()[0];
    assert_eq!(proxy.restart_count, 1);
    let waiting = proxy.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(status.phase.as_deref(), Some("Running"));

    // While the next container waits, kubelet serves the last terminated one.
    let text = read_log(&pods, "native-0", &proxy_logs()).await.unwrap();
    assert_eq!(
        text,
        "2026-11-20T11:00:01Z before the crash\n2026-11-20T11:00:02Z crashed\n"
    );
    let limited = LogParams {
        limit_bytes: Some(25),
        ..proxy_logs()
    };
    assert_eq!(
        read_log(&pods, "native-0", &limited).await.unwrap(),
        "2026-11-20T11:00:01Z befo"
    );

    let status = api_error(
        read_log(&pods, "native-0", &LogParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        status.message,
        "a container name must be specified for pod native-0, choose one of: [app] or one of the init containers: [istio-proxy]"
    );
}
