//! Checks Istio documents against Istio's published CRD schemas
//! (`fixtures/istio/crd-*.yaml`, from istio/api): every field name, type and
//! enum value, as the API server's structural-schema pruning and validation
//! would. `kubectl apply --dry-run=server` would do this against a cluster;
//! none is available to the tests, so the CRD is the judge.

#![allow(dead_code)]

use serde_yaml_ng::Value;

/// The CRD fixtures, one per kind.
const CRDS: &[&str] = &[
    "crd-peerauthentication.yaml",
    "crd-authorizationpolicy.yaml",
    "crd-telemetry.yaml",
    "crd-envoyfilter.yaml",
];

fn crd_for(api_version: &str, kind: &str) -> Option<Value> {
    let (group, version) = api_version.split_once('/')?;
    for file in CRDS {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/istio")
            .join(file);
        let crd: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if crd["spec"]["group"] != group || crd["spec"]["names"]["kind"] != kind {
            continue;
        }
        let versions = crd["spec"]["versions"].as_sequence()?;
        return versions
            .iter()
            .find(|v| v["name"] == version && v["served"] == true)
            .map(|v| v["schema"]["openAPIV3Schema"].clone());
    }
    None
}

/// Checks one document; the error names the path of the first field the schema refuses.
pub fn check(doc: &Value) -> Result<(), String> {
    let api_version = doc["apiVersion"].as_str().ok_or("no apiVersion")?;
    let kind = doc["kind"].as_str().ok_or("no kind")?;
    let schema = crd_for(api_version, kind)
        .ok_or_else(|| format!("no served CRD version for {api_version} {kind}"))?;
    let map = doc.as_mapping().ok_or("not a mapping")?;
    for (k, v) in map {
        let k = k.as_str().ok_or("a non-string key")?;
        match k {
            "apiVersion" | "kind" => {}
            "metadata" => check_metadata(v)?,
            _ => {
                let sub = &schema["properties"][k];
                if sub.is_null() {
                    return Err(format!("{kind}: unknown top-level field {k}"));
                }
                walk(v, sub, k)?;
            }
        }
    }
    Ok(())
}

/// Checks every document, panicking with the document on the first refusal.
pub fn check_all(docs: &[Value]) {
    assert!(!docs.is_empty(), "no documents to check");
    for d in docs {
        if let Err(e) = check(d) {
            panic!("{e}\n{}", serde_yaml_ng::to_string(d).unwrap());
        }
    }
}

/// ObjectMeta: the fields a manifest may set, with DNS-1123 names.
fn check_metadata(v: &Value) -> Result<(), String> {
    let m = v.as_mapping().ok_or("metadata is not a mapping")?;
    for (k, v) in m {
        match k.as_str() {
            Some("name" | "namespace") => {
                let s = v.as_str().ok_or("metadata name/namespace not a string")?;
                let dns1123 = !s.is_empty()
                    && s.len() <= 253
                    && s.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b)
                    })
                    && !s.starts_with('-')
                    && !s.ends_with('-');
                if !dns1123 {
                    return Err(format!("metadata: {s:?} is not a DNS-1123 name"));
                }
            }
            Some("labels" | "annotations") => {
                for (lk, lv) in v.as_mapping().ok_or("labels not a mapping")? {
                    if lk.as_str().is_none() || lv.as_str().is_none() {
                        return Err("metadata labels: keys and values must be strings".into());
                    }
                }
            }
            other => return Err(format!("metadata: unexpected field {other:?}")),
        }
    }
    Ok(())
}

fn walk(v: &Value, schema: &Value, path: &str) -> Result<(), String> {
    if schema["x-kubernetes-preserve-unknown-fields"] == true && schema["properties"].is_null() {
        return Ok(());
    }
    let ty = schema["type"].as_str();
    match v {
        Value::Mapping(m) => {
            if ty != Some("object") {
                return Err(format!("{path}: an object where the schema wants {ty:?}"));
            }
            for (k, child) in m {
                let k = k
                    .as_str()
                    .ok_or_else(|| format!("{path}: non-string key"))?;
                let sub = match &schema["properties"][k] {
                    Value::Null => match &schema["additionalProperties"] {
                        Value::Mapping(_) => &schema["additionalProperties"],
                        _ if schema["x-kubernetes-preserve-unknown-fields"] == true => continue,
                        _ => return Err(format!("unknown field {path}.{k}")),
                    },
                    s => s,
                };
                walk(child, sub, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        Value::Sequence(items) => {
            if ty != Some("array") {
                return Err(format!("{path}: a list where the schema wants {ty:?}"));
            }
            for (i, item) in items.iter().enumerate() {
                walk(item, &schema["items"], &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Value::String(s) => {
            let int_or_string = schema["x-kubernetes-int-or-string"] == true;
            if ty != Some("string") && !int_or_string {
                return Err(format!("{path}: a string where the schema wants {ty:?}"));
            }
            if let Some(values) = schema["enum"].as_sequence()
                && !values.iter().any(|e| e.as_str() == Some(s))
            {
                return Err(format!("{path}: {s:?} is not one of {values:?}"));
            }
            Ok(())
        }
        Value::Bool(_) if ty == Some("boolean") => Ok(()),
        Value::Number(_) if matches!(ty, Some("integer" | "number")) => Ok(()),
        other => Err(format!("{path}: {other:?} where the schema wants {ty:?}")),
    }
}
