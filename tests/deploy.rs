//! The deployment kit under `deploy/`, read as Kubernetes, Istio and Docker
//! would read it: every YAML document parses (the Kubernetes ones without a
//! field their API types would drop), strictly's RBAC is exactly
//! "read pods and their logs", the Deployment, Service and probes agree on
//! one port, the Istio files carry the lab's policy and formats (checked
//! against strictly's own format loader), and the image builds `--locked` and
//! runs as non-root.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_yaml_ng::Value;
use strictly::format::{Field, LineParser, LogFormat, Parsed, select};

/// The namespace strictly runs in and the name of everything it creates.
const STRICTLY: &str = "strictly";

/// The example namespace of `rbac-namespace.yaml` and the lab's Istio files.
const LAB_NAMESPACE: &str = "istioinaction";

/// The port `watch --listen` serves on.
const PORT: u64 = 9090;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn deploy_file(relative: &str) -> PathBuf {
    deploy_dir().join(relative)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `.yaml`/`.yml` file under `deploy/`, sorted.
fn yaml_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&deploy_dir(), &mut files);
    files.sort();
    files
}

/// The non-empty YAML documents of a (multi-document) file.
fn documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The one document of `kind` in `relative` (a path under `deploy/`).
fn the(relative: &str, kind: &str) -> Value {
    let mut found: Vec<Value> = documents(&deploy_file(relative))
        .into_iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect();
    assert_eq!(found.len(), 1, "{relative}: expected one {kind}");
    found.pop().expect("one document")
}

fn str_of<'v>(value: &'v Value, what: &str) -> &'v str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

/// A YAML sequence of strings.
fn strings<'v>(value: &'v Value, what: &str) -> Vec<&'v str> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("{what} is not a list: {value:?}"))
        .iter()
        .map(|v| str_of(v, what))
        .collect()
}

/// An RBAC rule reduced to what it grants: (apiGroups, resources, verbs).
type Grant = (Vec<String>, Vec<String>, BTreeSet<String>);

/// The grants of a Role or ClusterRole, rejecting any key but apiGroups/resources/verbs.
fn grants(role: &Value) -> BTreeSet<Grant> {
    let rules = role["rules"].as_sequence().expect("rules is a list");
    rules
        .iter()
        .map(|rule| {
            let keys: BTreeSet<&str> = rule
                .as_mapping()
                .expect("a rule is a mapping")
                .keys()
                .map(|k| str_of(k, "a rule key"))
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["apiGroups", "resources", "verbs"]),
                "no resourceNames, nonResourceURLs or other keys: {rule:?}"
            );
            let owned = |v: &Value, what| -> Vec<String> {
                strings(v, what).into_iter().map(String::from).collect()
            };
            (
                owned(&rule["apiGroups"], "apiGroups"),
                owned(&rule["resources"], "resources"),
                owned(&rule["verbs"], "verbs").into_iter().collect(),
            )
        })
        .collect()
}

/// What strictly needs: pods get/list/watch (find and follow replicas), pods/log get.
fn expected_grants() -> BTreeSet<Grant> {
    let grant = |resource: &str, verbs: &[&str]| -> Grant {
        (
            vec![String::new()],
            vec![resource.to_string()],
            verbs.iter().map(|v| v.to_string()).collect(),
        )
    };
    BTreeSet::from([
        grant("pods", &["get", "list", "watch"]),
        grant("pods/log", &["get"]),
    ])
}

/// Asserts a binding's roleRef and its single subject, the strictly ServiceAccount.
fn assert_binds_strictly(binding: &Value, role_kind: &str) {
    let role_ref = &binding["roleRef"];
    assert_eq!(
        role_ref["apiGroup"].as_str(),
        Some("rbac.authorization.k8s.io")
    );
    assert_eq!(role_ref["kind"].as_str(), Some(role_kind));
    assert_eq!(role_ref["name"].as_str(), Some(STRICTLY));
    let subjects = binding["subjects"].as_sequence().expect("subjects");
    assert_eq!(subjects.len(), 1, "only strictly's ServiceAccount");
    let subject = &subjects[0];
    assert_eq!(subject["kind"].as_str(), Some("ServiceAccount"));
    assert_eq!(subject["name"].as_str(), Some(STRICTLY));
    assert_eq!(subject["namespace"].as_str(), Some(STRICTLY));
}

/// The Deployment's pod template and its only container.
fn pod_and_container() -> (Value, Value) {
    let deployment = the("watch.yaml", "Deployment");
    let pod = deployment["spec"]["template"].clone();
    let containers = pod["spec"]["containers"].as_sequence().expect("containers");
    assert_eq!(containers.len(), 1, "one container, no sidecar");
    let container = containers[0].clone();
    (pod, container)
}

fn container_args(container: &Value) -> Vec<String> {
    strings(&container["args"], "args")
        .into_iter()
        .map(String::from)
        .collect()
}

/// The value following `flag` in `args`.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// Returns true if and only if `port` (a probe's or Service's) names or numbers the container's `http` port.
fn is_the_http_port(port: &Value, container: &Value) -> bool {
    let ports = container["ports"].as_sequence().expect("ports");
    ports.iter().any(|p| {
        p["name"].as_str() == Some("http")
            && p["containerPort"].as_u64() == Some(PORT)
            && (port.as_str() == Some("http") || port.as_u64() == Some(PORT))
    })
}

/// The lab's built-in format string.
fn lab_format() -> String {
    LogFormat::builtin("lab")
        .expect("the built-in lab format")
        .source()
        .to_string()
}

/// The access-log format text of the `strictly-access-log` extension provider.
fn extension_provider_text() -> String {
    let docs = documents(&deploy_file("istio/meshconfig-extension-provider.yaml"));
    assert_eq!(docs.len(), 1);
    let providers = docs[0]["meshConfig"]["extensionProviders"]
        .as_sequence()
        .expect("meshConfig.extensionProviders");
    let provider = providers
        .iter()
        .find(|p| p["name"].as_str() == Some("strictly-access-log"))
        .expect("a provider named strictly-access-log");
    let log = &provider["envoyFileAccessLog"];
    assert_eq!(log["path"].as_str(), Some("/dev/stdout"));
    str_of(&log["logFormat"]["text"], "logFormat.text").to_string()
}

/// One Dockerfile instruction: keyword (upper case) and its arguments, continuations joined.
fn dockerfile_instructions() -> Vec<(String, String)> {
    let text = read(&deploy_file("Dockerfile"));
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, args) = current
                    .split_once(char::is_whitespace)
                    .unwrap_or((&current, ""));
                out.push((keyword.to_ascii_uppercase(), args.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

/// The Dockerfile's stages, each a list of instructions starting with its FROM.
fn dockerfile_stages() -> Vec<Vec<(String, String)>> {
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for instruction in dockerfile_instructions() {
        if instruction.0 == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("the Dockerfile starts with FROM")
            .push(instruction);
    }
    stages
}

fn stage_args<'s>(stage: &'s [(String, String)], keyword: &str) -> Vec<&'s str> {
    stage
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, a)| a.as_str())
        .collect()
}

#[test]
fn every_yaml_file_under_deploy_parses_into_kubernetes_objects() {
    let files = yaml_files();
    let names: BTreeSet<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(deploy_dir())
                .expect("under deploy/")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    for expected in [
        "rbac-cluster.yaml",
        "rbac-namespace.yaml",
        "watch.yaml",
        "istio/audit-authorizationpolicy.yaml",
        "istio/envoyfilter-access-log.yaml",
        "istio/meshconfig-extension-provider.yaml",
        "istio/telemetry-access-log.yaml",
    ] {
        assert!(names.contains(expected), "deploy/{expected} is missing");
    }
    for file in &files {
        let docs = documents(file);
        assert!(!docs.is_empty(), "{}: no document", file.display());
        // The MeshConfig fragment is Helm values / IstioOperator input, not an object.
        if file.ends_with("meshconfig-extension-provider.yaml") {
            continue;
        }
        for doc in &docs {
            let what = format!("{}: {doc:?}", file.display());
            assert!(doc["apiVersion"].as_str().is_some(), "apiVersion: {what}");
            assert!(doc["kind"].as_str().is_some(), "kind: {what}");
            assert!(
                doc["metadata"]["name"].as_str().is_some(),
                "metadata.name: {what}"
            );
            // The lab's AuthorizationPolicy had name/namespace outside metadata.
            assert!(
                doc.get("name").is_none() && doc.get("namespace").is_none(),
                "name/namespace belong under metadata: {what}"
            );
            let cluster_scoped = matches!(
                doc["kind"].as_str(),
                Some("Namespace" | "ClusterRole" | "ClusterRoleBinding")
            );
            assert_eq!(
                doc["metadata"]["namespace"].as_str().is_some(),
                !cluster_scoped,
                "metadata.namespace on namespaced kinds only: {what}"
            );
        }
    }
}

#[test]
fn each_file_holds_the_expected_kinds_in_order() {
    let kinds = |relative: &str| -> Vec<String> {
        documents(&deploy_file(relative))
            .iter()
            .map(|d| str_of(&d["kind"], "kind").to_string())
            .collect()
    };
    assert_eq!(
        kinds("rbac-cluster.yaml"),
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]
    );
    assert_eq!(
        kinds("rbac-namespace.yaml"),
        ["ServiceAccount", "Role", "RoleBinding"]
    );
    assert_eq!(kinds("watch.yaml"), ["Namespace", "Deployment", "Service"]);
    assert_eq!(
        kinds("istio/audit-authorizationpolicy.yaml"),
        ["AuthorizationPolicy"]
    );
    assert_eq!(kinds("istio/envoyfilter-access-log.yaml"), ["EnvoyFilter"]);
    assert_eq!(kinds("istio/telemetry-access-log.yaml"), ["Telemetry"]);
}

#[test]
fn service_account_is_strictly_in_namespace_strictly() {
    for file in ["rbac-cluster.yaml", "rbac-namespace.yaml"] {
        let sa = the(file, "ServiceAccount");
        assert_eq!(sa["metadata"]["name"].as_str(), Some(STRICTLY), "{file}");
        assert_eq!(
            sa["metadata"]["namespace"].as_str(),
            Some(STRICTLY),
            "{file}"
        );
    }
    let namespace = the("watch.yaml", "Namespace");
    assert_eq!(namespace["metadata"]["name"].as_str(), Some(STRICTLY));
}

#[test]
fn cluster_role_grants_only_pods_get_list_watch_and_pods_log_get() {
    let role = the("rbac-cluster.yaml", "ClusterRole");
    assert_eq!(
        role["apiVersion"].as_str(),
        Some("rbac.authorization.k8s.io/v1")
    );
    assert_eq!(role["metadata"]["name"].as_str(), Some(STRICTLY));
    assert!(role.get("aggregationRule").is_none());
    let grants = grants(&role);
    assert_eq!(grants, expected_grants());
    assert!(
        grants
            .iter()
            .all(|(g, r, v)| !g.iter().chain(r).chain(v).any(|s| s.contains('*'))),
        "no wildcard"
    );
}

#[test]
fn role_grants_the_same_rules_as_the_cluster_role_in_the_example_namespace() {
    let role = the("rbac-namespace.yaml", "Role");
    assert_eq!(
        role["apiVersion"].as_str(),
        Some("rbac.authorization.k8s.io/v1")
    );
    assert_eq!(role["metadata"]["name"].as_str(), Some(STRICTLY));
    assert_eq!(role["metadata"]["namespace"].as_str(), Some(LAB_NAMESPACE));
    assert_eq!(grants(&role), expected_grants());
    assert_eq!(
        grants(&role),
        grants(&the("rbac-cluster.yaml", "ClusterRole"))
    );
    let text = read(&deploy_file("rbac-namespace.yaml"));
    assert!(
        text.to_lowercase().contains("change"),
        "a comment says to change the namespace"
    );
}

#[test]
fn cluster_role_binding_binds_the_cluster_role_to_the_strictly_service_account() {
    let binding = the("rbac-cluster.yaml", "ClusterRoleBinding");
    assert_binds_strictly(&binding, "ClusterRole");
}

#[test]
fn role_binding_binds_the_role_to_the_strictly_service_account_in_the_roles_namespace() {
    let binding = the("rbac-namespace.yaml", "RoleBinding");
    assert_binds_strictly(&binding, "Role");
    assert_eq!(
        binding["metadata"]["namespace"].as_str(),
        the("rbac-namespace.yaml", "Role")["metadata"]["namespace"].as_str()
    );
}

#[test]
fn deployment_runs_watch_all_namespaces_as_the_service_account_on_port_9090() {
    let deployment = the("watch.yaml", "Deployment");
    assert_eq!(deployment["metadata"]["namespace"].as_str(), Some(STRICTLY));
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(1));
    let (pod, container) = pod_and_container();
    assert_eq!(pod["spec"]["serviceAccountName"].as_str(), Some(STRICTLY));
    assert_ne!(
        pod["spec"]["automountServiceAccountToken"].as_bool(),
        Some(false)
    );
    assert_eq!(container["image"].as_str(), Some("strictly:latest"));

    let args = container_args(&container);
    assert_eq!(args.first().map(String::as_str), Some("watch"), "{args:?}");
    assert!(args.iter().any(|a| a == "-A"), "{args:?}");
    assert_eq!(flag_value(&args, "--listen"), Some("0.0.0.0:9090"));

    let ports = container["ports"].as_sequence().expect("ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["name"].as_str(), Some("http"));
    assert_eq!(ports[0]["containerPort"].as_u64(), Some(PORT));
}

#[test]
fn deployment_probes_healthz_on_the_http_port() {
    let (_, container) = pod_and_container();
    for probe in ["livenessProbe", "readinessProbe"] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some("/healthz"), "{probe}");
        assert!(
            is_the_http_port(&get["port"], &container),
            "{probe} port {:?} is not the container's http port",
            get["port"]
        );
    }
}

#[test]
fn deployment_keeps_its_state_on_a_volume_at_var_lib_strictly() {
    let (pod, container) = pod_and_container();
    let args = container_args(&container);
    let state = flag_value(&args, "--state").expect("--state FILE");
    assert!(state.starts_with("/var/lib/strictly/"), "{state}");

    let mounts = container["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts");
    let mount = mounts
        .iter()
        .find(|m| m["mountPath"].as_str() == Some("/var/lib/strictly"))
        .expect("a volume at /var/lib/strictly");
    assert_ne!(mount["readOnly"].as_bool(), Some(true));
    let name = mount["name"].as_str();
    let volumes = pod["spec"]["volumes"].as_sequence().expect("volumes");
    let volume = volumes
        .iter()
        .find(|v| v["name"].as_str() == name)
        .expect("the mounted volume is declared");
    assert!(volume.get("emptyDir").is_some(), "{volume:?}");
}

#[test]
fn deployment_is_non_root_read_only_and_bounded() {
    let (pod, container) = pod_and_container();
    let pod_security = &pod["spec"]["securityContext"];
    let security = &container["securityContext"];
    assert!(
        pod_security["runAsNonRoot"].as_bool() == Some(true)
            || security["runAsNonRoot"].as_bool() == Some(true)
    );
    assert_ne!(pod_security["runAsUser"].as_u64(), Some(0));
    assert_ne!(security["runAsUser"].as_u64(), Some(0));
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(strings(&security["capabilities"]["drop"], "drop"), ["ALL"]);

    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            let value = &container["resources"][bound][resource];
            assert!(
                value.as_str().is_some() || value.as_u64().is_some(),
                "resources.{bound}.{resource}"
            );
        }
    }
}

#[test]
fn deployment_is_scraped_by_prometheus_and_kept_out_of_the_mesh() {
    let (pod, _) = pod_and_container();
    let annotations = &pod["metadata"]["annotations"];
    // Annotation values must be strings: an unquoted `true` or `9090` is rejected by the API server.
    assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(annotations["prometheus.io/port"].as_str(), Some("9090"));
    assert_eq!(
        pod["metadata"]["labels"]["sidecar.istio.io/inject"].as_str(),
        Some("false")
    );
}

#[test]
fn service_targets_the_container_port_and_selects_the_pod() {
    let service = the("watch.yaml", "Service");
    let (pod, container) = pod_and_container();
    assert_eq!(service["metadata"]["namespace"].as_str(), Some(STRICTLY));
    assert_eq!(service["spec"]["type"].as_str(), Some("ClusterIP"));
    let ports = service["spec"]["ports"].as_sequence().expect("ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["port"].as_u64(), Some(PORT));
    assert!(
        is_the_http_port(&ports[0]["targetPort"], &container),
        "targetPort {:?}",
        ports[0]["targetPort"]
    );

    let selector = service["spec"]["selector"].as_mapping().expect("selector");
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(
            &pod["metadata"]["labels"][str_of(key, "label")],
            value,
            "the pod carries the Service's selector label {key:?}"
        );
    }
    let deployment = the("watch.yaml", "Deployment");
    let match_labels = deployment["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("matchLabels");
    for (key, value) in match_labels {
        assert_eq!(&pod["metadata"]["labels"][str_of(key, "label")], value);
    }
}

#[test]
fn authorization_policy_is_the_labs_audit_rule_with_metadata_fixed() {
    let policy = the(
        "istio/audit-authorizationpolicy.yaml",
        "AuthorizationPolicy",
    );
    assert!(
        str_of(&policy["apiVersion"], "apiVersion").starts_with("security.istio.io/"),
        "{policy:?}"
    );
    assert_eq!(
        policy["metadata"]["name"].as_str(),
        Some("audit-web-api-authpolicy")
    );
    assert_eq!(
        policy["metadata"]["namespace"].as_str(),
        Some(LAB_NAMESPACE)
    );
    let spec = &policy["spec"];
    assert_eq!(
        spec["selector"]["matchLabels"]["app"].as_str(),
        Some("web-api")
    );
    assert_eq!(spec["action"].as_str(), Some("AUDIT"));

    let rules = spec["rules"].as_sequence().expect("rules");
    assert_eq!(rules.len(), 1);
    let from = rules[0]["from"].as_sequence().expect("from");
    assert_eq!(from.len(), 1);
    assert_eq!(
        strings(&from[0]["source"]["notNamespaces"], "notNamespaces"),
        [LAB_NAMESPACE]
    );
    let to = rules[0]["to"].as_sequence().expect("to");
    assert_eq!(to.len(), 1);
    assert_eq!(strings(&to[0]["operation"]["methods"], "methods"), ["GET"]);
    assert_eq!(strings(&to[0]["operation"]["paths"], "paths"), ["/*"]);
}

#[test]
fn envoy_filter_logs_inbound_with_the_builtin_lab_format() {
    let filter = the("istio/envoyfilter-access-log.yaml", "EnvoyFilter");
    // EnvoyFilter is served as v1alpha3 only; the lab's v1beta1 does not apply.
    assert_eq!(
        filter["apiVersion"].as_str(),
        Some("networking.istio.io/v1alpha3")
    );
    let spec = &filter["spec"];
    assert_eq!(
        spec["workloadSelector"]["labels"]["app"].as_str(),
        Some("web-api")
    );
    let patches = spec["configPatches"].as_sequence().expect("configPatches");
    assert_eq!(patches.len(), 1);
    let patch = &patches[0];
    assert_eq!(patch["applyTo"].as_str(), Some("NETWORK_FILTER"));
    assert_eq!(patch["match"]["context"].as_str(), Some("SIDECAR_INBOUND"));
    assert_eq!(
        patch["match"]["listener"]["filterChain"]["filter"]["name"].as_str(),
        Some("envoy.filters.network.http_connection_manager")
    );
    assert_eq!(patch["patch"]["operation"].as_str(), Some("MERGE"));
    let loggers = patch["patch"]["value"]["typed_config"]["access_log"]
        .as_sequence()
        .expect("access_log");
    assert_eq!(loggers.len(), 1);
    let config = &loggers[0]["typed_config"];
    assert_eq!(config["path"].as_str(), Some("/dev/stdout"));
    assert_eq!(str_of(&config["format"], "format"), lab_format());
}

#[test]
fn log_format_file_loads_the_lab_format_from_the_envoy_filter() {
    let path = deploy_file("istio/envoyfilter-access-log.yaml");
    let formats = select(None, Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(formats.len(), 1);
    assert_eq!(formats[0].source(), lab_format());
    for field in [Field::PeerUriSan, Field::Xfcc, Field::AuditHint] {
        assert!(formats[0].logs(field), "{field:?}");
    }
}

#[test]
fn extension_provider_format_is_the_lab_format_plus_the_peer_address() {
    let lab = lab_format();
    let lab = lab.strip_suffix('\n').unwrap_or(&lab);
    assert_eq!(
        extension_provider_text(),
        format!(r#"{lab} peer: "%DOWNSTREAM_REMOTE_ADDRESS%""#)
    );
}

#[test]
fn log_format_file_loads_the_extension_provider_format_with_peer_address_and_san() {
    let path = deploy_file("istio/meshconfig-extension-provider.yaml");
    let formats = select(None, Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        formats.len(),
        1,
        "only the provider's format, no Istio default"
    );
    let format = &formats[0];
    assert_eq!(format.source(), extension_provider_text());
    assert!(format.logs(Field::DownstreamRemoteAddress));
    assert!(format.logs(Field::PeerUriSan));
    assert!(format.has_transport_evidence());
}

#[test]
fn extension_provider_format_parses_a_plaintext_line_and_names_its_peer() {
    let path = deploy_file("istio/meshconfig-extension-provider.yaml");
    let mut parser = LineParser::new(select(None, Some(&path)).expect("formats").into());
    // The lab's plaintext sample line, as this format writes it.
    let line = concat!(
        r#"[2021-06-14T10:29:53.284Z] "GET / HTTP/1.1" 200 - "-" 0 1100 10 10 "-" "#,
        r#"mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag: "true" peer: "10.44.0.7:51234""#
    );
    let Parsed::Access { entry, .. } = parser.parse(line.as_bytes()) else {
        panic!("the line does not parse");
    };
    assert_eq!(
        entry.get(Field::DownstreamRemoteAddress),
        Some(&b"10.44.0.7:51234"[..])
    );
    assert_eq!(entry.get(Field::PeerUriSan), None, "plaintext: no peer SAN");
    assert_eq!(entry.get(Field::AuditHint), Some(&b"true"[..]));
}

#[test]
fn telemetry_turns_the_provider_on_for_web_api_inbound_only() {
    let telemetry = the("istio/telemetry-access-log.yaml", "Telemetry");
    assert_eq!(
        telemetry["apiVersion"].as_str(),
        Some("telemetry.istio.io/v1")
    );
    assert_eq!(
        telemetry["metadata"]["namespace"].as_str(),
        Some(LAB_NAMESPACE)
    );
    let spec = &telemetry["spec"];
    assert_eq!(
        spec["selector"]["matchLabels"]["app"].as_str(),
        Some("web-api")
    );
    let logging = spec["accessLogging"].as_sequence().expect("accessLogging");
    assert_eq!(logging.len(), 1);
    let providers = logging[0]["providers"].as_sequence().expect("providers");
    let names: Vec<&str> = providers
        .iter()
        .map(|p| str_of(&p["name"], "provider name"))
        .collect();
    assert_eq!(names, ["strictly-access-log"]);
    // The format has no %UPSTREAM_CLUSTER%: outbound lines would pass for inbound ones.
    assert_eq!(logging[0]["match"]["mode"].as_str(), Some("SERVER"));
}

#[test]
fn dockerfile_builds_locked_from_rust_1_95() {
    let stages = dockerfile_stages();
    assert!(stages.len() >= 2, "multi-stage");
    let builder = &stages[0];
    let from = builder[0].1.as_str();
    assert!(from.starts_with("rust:1.95"), "{from}");
    assert!(from.to_lowercase().ends_with(" as builder"), "{from}");
    let builds: Vec<&str> = stage_args(builder, "RUN")
        .into_iter()
        .filter(|run| run.contains("cargo build"))
        .collect();
    assert_eq!(builds.len(), 1, "one cargo build");
    for flag in ["--release", "--locked", "--bin strictly"] {
        assert!(
            builds[0].contains(flag),
            "cargo build {flag}: {}",
            builds[0]
        );
    }
}

#[test]
fn dockerfile_runtime_runs_strictly_watch_as_non_root() {
    let stages = dockerfile_stages();
    let runtime = stages.last().expect("a runtime stage");
    let from = runtime[0].1.as_str();
    assert!(
        !from.starts_with("rust:"),
        "a small runtime, not the toolchain: {from}"
    );
    assert!(
        stage_args(runtime, "COPY")
            .iter()
            .any(|c| c.starts_with("--from=builder")),
        "the binary comes from the builder"
    );

    let users = stage_args(runtime, "USER");
    let user = users.last().expect("the runtime sets USER");
    let name = user.split(':').next().unwrap_or_default();
    assert!(
        !name.is_empty() && name != "root" && name != "0",
        "USER {user}"
    );

    let entrypoint = stage_args(runtime, "ENTRYPOINT");
    let entrypoint: Vec<String> =
        serde_json::from_str(entrypoint.last().expect("ENTRYPOINT")).expect("exec form");
    assert_eq!(entrypoint, ["strictly"]);
    let cmd = stage_args(runtime, "CMD");
    let cmd: Vec<String> = serde_json::from_str(cmd.last().expect("CMD")).expect("exec form");
    assert_eq!(cmd, ["watch", "-A", "--listen", "0.0.0.0:9090"]);
}

#[test]
fn dockerfile_builder_and_runtime_share_a_debian_release() {
    // A binary built on a newer glibc than the runtime's fails at start
    // ("GLIBC_2.xx not found"), so the two stages must name one release.
    let stages = dockerfile_stages();
    let builder = stages[0][0].1.as_str();
    let runtime = stages.last().expect("runtime")[0].1.as_str();
    let release = |image: &str| -> Option<u32> {
        let image = image.split_whitespace().next()?;
        [
            ("bookworm", 12),
            ("trixie", 13),
            ("debian12", 12),
            ("debian13", 13),
        ]
        .into_iter()
        .find(|(name, _)| image.contains(name))
        .map(|(_, n)| n)
    };
    let built_on =
        release(builder).unwrap_or_else(|| panic!("name the builder's Debian: {builder}"));
    let runs_on =
        release(runtime).unwrap_or_else(|| panic!("name the runtime's Debian: {runtime}"));
    assert_eq!(built_on, runs_on, "{builder} vs {runtime}");
}

#[test]
fn deployment_runs_as_the_images_user() {
    let stages = dockerfile_stages();
    let runtime = stages.last().expect("runtime");
    let user = *stage_args(runtime, "USER").last().expect("USER");
    let uid: u64 = user
        .split(':')
        .next()
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("a numeric USER lets the kubelet check runAsNonRoot: {user}"));
    let (pod, _) = pod_and_container();
    assert_eq!(
        pod["spec"]["securityContext"]["runAsUser"].as_u64(),
        Some(uid)
    );
}

#[test]
fn readme_names_every_file_and_the_log_format_file_command() {
    let readme = read(&deploy_file("README.md"));
    for file in yaml_files() {
        let relative = file
            .strip_prefix(deploy_dir())
            .expect("under deploy/")
            .to_string_lossy()
            .replace('\\', "/");
        assert!(
            readme.contains(&relative),
            "README.md does not mention {relative}"
        );
    }
    assert!(readme.contains("Dockerfile"));
    assert!(readme.contains("pods/log"));
    assert!(
        readme.contains(
            "strictly report --log-format-file deploy/istio/meshconfig-extension-provider.yaml"
        ),
        "README.md shows strictly report --log-format-file on the provider file"
    );
}

/// Returns the fields `T` drops or changes: a misspelled or misplaced field
/// does not survive a trip through the typed Kubernetes object.
fn typed_round_trip_difference<T>(doc: &Value) -> Option<(serde_json::Value, serde_json::Value)>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let original = serde_json::to_value(doc).expect("YAML as JSON");
    let typed: T =
        serde_json::from_value(original.clone()).unwrap_or_else(|e| panic!("{e}: {original}"));
    let back = serde_json::to_value(typed).expect("typed object as JSON");
    (original != back).then_some((original, back))
}

#[test]
fn kubernetes_objects_survive_a_round_trip_through_their_api_types() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

    for file in [
        "rbac-cluster.yaml",
        "rbac-namespace.yaml",
        "rbac-ztunnel.yaml",
        "watch.yaml",
    ] {
        for doc in documents(&deploy_file(file)) {
            let kind = str_of(&doc["kind"], "kind");
            let difference = match kind {
                "Namespace" => typed_round_trip_difference::<Namespace>(&doc),
                "ServiceAccount" => typed_round_trip_difference::<ServiceAccount>(&doc),
                "ClusterRole" => typed_round_trip_difference::<ClusterRole>(&doc),
                "ClusterRoleBinding" => typed_round_trip_difference::<ClusterRoleBinding>(&doc),
                "Role" => typed_round_trip_difference::<Role>(&doc),
                "RoleBinding" => typed_round_trip_difference::<RoleBinding>(&doc),
                "Deployment" => typed_round_trip_difference::<Deployment>(&doc),
                "Service" => typed_round_trip_difference::<Service>(&doc),
                other => panic!("{file}: unexpected kind {other}"),
            };
            if let Some((original, back)) = difference {
                panic!(
                    "{file}: {kind} loses or changes fields:\n  written: {original}\n  read:    {back}"
                );
            }
        }
    }
}
