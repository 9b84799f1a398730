//! Issue 9 items 2 and 6: `strictly instrument` as a user runs it. Its
//! manifests pass Istio's CRD schema, carry the built-in `strictly` format
//! (strictly's own format loader reads them back to it), and lines that
//! format writes are read by the next `report` with no flags.

mod common;
mod schema;

use common::strictly;
use serde::Deserialize as _;
use serde_yaml_ng::Value;
use strictly::format::LogFormat;

fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}")))
        .filter(|d| !d.is_null())
        .collect()
}

fn instrument(args: &[&str]) -> (String, String, Option<i32>) {
    let out = strictly().arg("instrument").args(args).output().unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code(),
    )
}

fn builtin_source() -> String {
    LogFormat::builtin("strictly")
        .expect("the built-in strictly format")
        .source()
        .to_string()
}

/// The one format `--log-format-file` finds in `yaml`.
fn loaded_format(yaml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifests.yaml");
    std::fs::write(&path, yaml).unwrap();
    let formats = strictly::format::load(None, Some(&path)).unwrap();
    assert_eq!(formats.len(), 1, "one format in {yaml}");
    formats[0].source().to_string()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

#[test]
fn issue_9_2_envoyfilter_and_audit_policy_per_workload() {
    let (yaml, stderr, code) =
        instrument(&["-n", "istioinaction", "deploy/web-api", "sts/catalog"]);
    assert_eq!(code, Some(0), "{stderr}");
    let docs = documents(&yaml);
    schema::check_all(&docs);
    let policies = of_kind(&docs, "AuthorizationPolicy");
    let filters = of_kind(&docs, "EnvoyFilter");
    assert_eq!((policies.len(), filters.len(), docs.len()), (2, 2, 4));
    for (p, app) in policies.iter().zip(["catalog", "web-api"]) {
        assert_eq!(p["spec"]["action"], "AUDIT");
        assert_eq!(p["spec"]["selector"]["matchLabels"]["app"], app);
        assert_eq!(
            p["spec"]["rules"][0]["from"][0]["source"]["notNamespaces"][0],
            "istioinaction"
        );
    }
    let f = filters[1];
    assert_eq!(f["apiVersion"], "networking.istio.io/v1alpha3");
    assert_eq!(f["spec"]["workloadSelector"]["labels"]["app"], "web-api");
    let patch = &f["spec"]["configPatches"][0];
    assert_eq!(patch["match"]["context"], "SIDECAR_INBOUND");
    let logger = &patch["patch"]["value"]["typed_config"]["access_log"][0]["typed_config"];
    assert_eq!(
        logger["log_format"]["text_format_source"]["inline_string"],
        builtin_source().as_str()
    );
    // strictly reads the format back out of one workload's manifests as its own built-in.
    let one = instrument(&["-n", "istioinaction", "deploy/web-api"]).0;
    assert_eq!(loaded_format(&one), builtin_source());
}

#[test]
fn issue_9_2_telemetry_method_and_its_mesh_config_provider() {
    let (yaml, stderr, code) = instrument(&["--method", "telemetry", "shop/deploy/cart"]);
    assert_eq!(code, Some(0), "{stderr}");
    let docs = documents(&yaml);
    schema::check_all(&docs);
    let telemetry = of_kind(&docs, "Telemetry");
    assert_eq!(telemetry.len(), 1);
    let t = telemetry[0];
    assert_eq!(t["apiVersion"], "telemetry.istio.io/v1");
    assert_eq!(t["metadata"]["namespace"], "shop");
    assert_eq!(t["spec"]["selector"]["matchLabels"]["app"], "cart");
    assert_eq!(t["spec"]["accessLogging"][0]["match"]["mode"], "SERVER");
    let provider = t["spec"]["accessLogging"][0]["providers"][0]["name"]
        .as_str()
        .unwrap();
    assert_eq!(of_kind(&docs, "AuthorizationPolicy").len(), 1);

    let (mesh, _, code) = instrument(&["--mesh-config"]);
    assert_eq!(code, Some(0));
    let m = &documents(&mesh)[0];
    let providers = m["meshConfig"]["extensionProviders"].as_sequence().unwrap();
    let p = providers.iter().find(|p| p["name"] == provider).unwrap();
    let text = p["envoyFileAccessLog"]["logFormat"]["text"]
        .as_str()
        .unwrap();
    // The text carries every field strictly judges by; Istio appends the newline.
    for op in [
        "%DOWNSTREAM_PEER_URI_SAN%",
        "%DOWNSTREAM_LOCAL_URI_SAN%",
        "%DOWNSTREAM_REMOTE_ADDRESS%",
        "%REQ(X-FORWARDED-CLIENT-CERT)%",
        "%DYNAMIC_METADATA(envoy.common:access_log_hint)%",
    ] {
        assert!(text.contains(op), "{op} in {text}");
    }
    assert_eq!(format!("{text}\n"), builtin_source());
    assert_eq!(format!("{}\n", loaded_format(&mesh)), builtin_source());
}

/// A line as a sidecar with the instrumented format writes it: every operator replaced.
fn render(format: &str, values: &[(&str, &str)]) -> String {
    let mut line = format.trim_end_matches('\n').to_string();
    for (op, v) in values {
        line = line.replace(op, v);
    }
    assert!(!line.contains('%'), "an operator left in {line}");
    line
}

#[test]
fn issue_9_2_lines_in_the_instrumented_format_need_no_flags() {
    let yaml = instrument(&["-n", "istioinaction", "deploy/web-api"]).0;
    let docs = documents(&yaml);
    let format = of_kind(&docs, "EnvoyFilter")[0]["spec"]["configPatches"][0]["patch"]["value"]
        ["typed_config"]["access_log"][0]["typed_config"]["log_format"]["text_format_source"]
        ["inline_string"]
        .as_str()
        .unwrap()
        .to_string();
    let sleep = "spiffe://cluster.local/ns/istioinaction/sa/sleep";
    let web = "spiffe://cluster.local/ns/istioinaction/sa/web-api";
    let base = |at: &str| {
        vec![
            ("%REQ(:METHOD)%", "GET".to_string()),
            ("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "/".into()),
            ("%PROTOCOL%", "HTTP/1.1".into()),
            ("%RESPONSE_CODE%", "200".into()),
            ("%RESPONSE_FLAGS%", "-".into()),
            ("%UPSTREAM_TRANSPORT_FAILURE_REASON%", "-".into()),
            ("%BYTES_RECEIVED%", "0".into()),
            ("%BYTES_SENT%", "1100".into()),
            ("%DURATION%", "4".into()),
            ("%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "3".into()),
            ("%REQ(X-FORWARDED-FOR)%", "-".into()),
            ("%START_TIME%", format!("{at}.000Z")),
        ]
    };
    // Each replica's log reaches back past the window's start (pilot-agent's first line).
    let mut log = String::new();
    for pod in ["web-api-7d9f8c6b5-x2x4z", "catalog-0"] {
        log.push_str(&format!(
            "[pod/{pod}/istio-proxy] 2026-11-20T09:00:00.000000001Z 2026-11-20T09:00:00.000000Z\tinfo\tFLAG: --concurrency=\"2\"\n"
        ));
    }
    for i in 0..12 {
        let at = format!("2026-11-20T11:{:02}:00", 10 + i);
        let mut v = base(&at);
        v.extend([
            ("%DOWNSTREAM_PEER_URI_SAN%", sleep.to_string()),
            ("%DOWNSTREAM_LOCAL_URI_SAN%", web.to_string()),
            (
                "%REQ(X-FORWARDED-CLIENT-CERT)%",
                format!("By={web};Hash=ab;Subject=\"\";URI={sleep}"),
            ),
            (
                "%DYNAMIC_METADATA(envoy.common:access_log_hint)%",
                "false".into(),
            ),
            ("%DOWNSTREAM_REMOTE_ADDRESS%", "10.44.1.9:40112".into()),
        ]);
        let v: Vec<(&str, &str)> = v.iter().map(|(k, x)| (*k, x.as_str())).collect();
        log.push_str(&format!(
            "[pod/web-api-7d9f8c6b5-x2x4z/istio-proxy] {at}.000000001Z {}\n",
            render(&format, &v)
        ));
    }
    // One plaintext request to catalog from a pod without a sidecar: named by its address.
    let at = "2026-11-20T11:30:00";
    let mut v = base(at);
    v.extend([
        ("%DOWNSTREAM_PEER_URI_SAN%", "-".to_string()),
        ("%DOWNSTREAM_LOCAL_URI_SAN%", "-".into()),
        ("%REQ(X-FORWARDED-CLIENT-CERT)%", "-".into()),
        (
            "%DYNAMIC_METADATA(envoy.common:access_log_hint)%",
            "true".into(),
        ),
        ("%DOWNSTREAM_REMOTE_ADDRESS%", "10.44.0.7:51234".into()),
    ]);
    let v: Vec<(&str, &str)> = v.iter().map(|(k, x)| (*k, x.as_str())).collect();
    log.push_str(&format!(
        "[pod/catalog-0/istio-proxy] {at}.000000001Z {}\n",
        render(&format, &v)
    ));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("instrumented.log");
    std::fs::write(&path, &log).unwrap();
    let out = strictly()
        .args([
            "report",
            "-o",
            "json",
            "-n",
            "istioinaction",
            "--window",
            "2h",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["input"]["malformed"], 0, "{report:#}");
    assert_eq!(report["input"]["requests"], 13, "{report:#}");
    let web_api = common::destination(&report, "istioinaction/web-api");
    assert_eq!(web_api["verdict"], "ready", "{web_api:#}");
    let catalog = common::destination(&report, "istioinaction/catalog");
    assert_eq!(catalog["verdict"], "blocked");
    let caller = &catalog["sources"][0];
    assert_eq!(
        (caller["plaintext"].as_u64(), caller["peer"].as_str()),
        (Some(1), Some("10.44.0.7"))
    );
}

#[test]
fn issue_9_2_usage_errors_are_one_line() {
    for (args, needle) in [
        (vec!["deploy/web-api"], "-n/--namespace"),
        (vec!["-n", "x", "pod/web-1"], "pod/web-1"),
        (vec!["-n", "x", "-l", "app=a", "deploy/a"], "-l/--selector"),
        (vec!["-n", "x", "-l", "app"], "KEY=VALUE"),
        (vec!["-n", "x"], "name the workloads"),
        (vec!["-n", "x", "other/deploy/a"], "namespace other"),
        (vec!["--mesh-config", "deploy/a"], "--mesh-config"),
    ] {
        let (stdout, stderr, code) = instrument(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("strictly: error: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn issue_9_2_label_selector_names_the_resources() {
    let (yaml, _, code) = instrument(&["-n", "shop", "-l", "app=cart,version=v2"]);
    assert_eq!(code, Some(0));
    let docs = documents(&yaml);
    schema::check_all(&docs);
    let f = of_kind(&docs, "EnvoyFilter")[0];
    assert_eq!(f["spec"]["workloadSelector"]["labels"]["version"], "v2");
    assert_eq!(f["metadata"]["name"], "cart-v2-strictly-access-log");
    // Label values may hold what resource names may not: the name is made a DNS-1123 one.
    let (yaml, _, code) = instrument(&["-n", "shop", "-l", "app=Cart_V2"]);
    assert_eq!(code, Some(0));
    let docs = documents(&yaml);
    schema::check_all(&docs);
    assert_eq!(
        of_kind(&docs, "Telemetry").len() + of_kind(&docs, "EnvoyFilter").len(),
        1
    );
    assert_eq!(
        of_kind(&docs, "EnvoyFilter")[0]["metadata"]["name"],
        "cart-v2-strictly-access-log"
    );
}
