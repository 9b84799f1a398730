//! `--log-format-file`: finds the access-log format(s) in whatever the user has.
//!
//! Accepted: a plain format string (one per line), an EnvoyFilter like the
//! lab's (`typed_config.format`, `log_format.text_format`,
//! `text_format_source.inline_string`, `json_format`, snake or camel case),
//! Istio mesh config or the `istio` ConfigMap (`accessLogFormat` and
//! `accessLogEncoding`, also inside the `mesh:` string), an IstioOperator's
//! `meshConfig`, and MeshConfig `extensionProviders[].envoyFileAccessLog`.
//! Multi-document YAML is searched document by document.

use super::log_format::LogFormat;
use super::{FormatError, builtin};
use serde::Deserialize as _;
use serde_yaml_ng::{Mapping, Value};
use std::path::Path;

/// A format found in a file, before compiling.
#[derive(Debug, PartialEq)]
enum Found {
    Text(String),
    Json(Vec<(String, String)>),
    Builtin(&'static str),
}

/// Loads and compiles every format in `path`; errors name the file.
pub(crate) fn load(path: &Path) -> Result<Vec<LogFormat>, FormatError> {
    let label = path.display().to_string();
    let file_error = |message: String| FormatError::File {
        path: label.clone(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| file_error(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| file_error("not a UTF-8 text file".into()))?;
    let found = find_formats(&text).map_err(&file_error)?;
    if found.is_empty() {
        return Err(file_error(
            "no access-log format found: expected an Envoy format string, an EnvoyFilter \
             (typed_config.format, log_format.text_format, text_format_source.inline_string), \
             Istio mesh config (accessLogFormat) or MeshConfig extensionProviders[].envoyFileAccessLog"
                .into(),
        ));
    }
    let mut formats = Vec::with_capacity(found.len());
    let mut customs = 0;
    for item in found {
        let custom_name = |n: usize| {
            if n == 1 {
                "custom".to_string()
            } else {
                format!("custom-{n}")
            }
        };
        let format = match item {
            Found::Builtin(name) => LogFormat::builtin(name)
                .ok_or_else(|| file_error(format!("built-in format {name} is missing")))?,
            Found::Text(s) => {
                customs += 1;
                let name = custom_name(customs);
                let f = LogFormat::compile(&name, &s).map_err(|e| file_error(e.to_string()))?;
                f.require_transport_evidence(&format!("{name} from {label}"))?
            }
            Found::Json(entries) => {
                customs += 1;
                let name = custom_name(customs);
                let f = LogFormat::compile_json(&name, entries)
                    .map_err(|e| file_error(e.to_string()))?;
                f.require_transport_evidence(&format!("{name} from {label}"))?
            }
        };
        formats.push(format);
    }
    Ok(formats)
}

/// Finds formats in a file's text: YAML first, else plain format strings.
fn find_formats(text: &str) -> Result<Vec<Found>, String> {
    let mut found = Vec::new();
    if let Some(docs) = yaml_documents(text) {
        for doc in &docs {
            search(doc, &mut found)?;
        }
        if !found.is_empty() {
            return Ok(dedup(found));
        }
        // A quoted string (copied from YAML or JSON, `\"` and `\n` escapes included).
        let trimmed = text.trim();
        if let [Value::String(s)] = docs.as_slice()
            && trimmed.starts_with(['"', '\''])
        {
            return Ok(vec![Found::Text(s.clone())]);
        }
        // Structured YAML without any access-log setting.
        if docs
            .iter()
            .any(|d| matches!(d, Value::Mapping(_) | Value::Sequence(_) | Value::Tagged(_)))
        {
            return Ok(Vec::new());
        }
    }
    // Plain text: one format per line; blank lines and `#` comments are skipped.
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        found.push(Found::Text(line.to_string()));
    }
    Ok(dedup(found))
}

/// Parses every YAML document, or `None` if the text is not YAML.
fn yaml_documents(text: &str) -> Option<Vec<Value>> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).ok())
        .collect()
}

fn dedup(found: Vec<Found>) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::with_capacity(found.len());
    for f in found {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// Walks a YAML tree, inspecting every mapping.
fn search(value: &Value, found: &mut Vec<Found>) -> Result<(), String> {
    match value {
        Value::Mapping(m) => {
            inspect(m, found)?;
            for (_, child) in m {
                search(child, found)?;
            }
        }
        Value::Sequence(items) => {
            for item in items {
                search(item, found)?;
            }
        }
        Value::Tagged(t) => search(&t.value, found)?,
        _ => {}
    }
    Ok(())
}

/// Looks for access-log settings directly in one mapping (its children are searched by the caller).
fn inspect(m: &Mapping, found: &mut Vec<Found>) -> Result<(), String> {
    // Envoy FileAccessLog: deprecated `format` / `json_format` on typed_config.
    for key in ["typed_config", "typedConfig", "config"] {
        if let Some(Value::Mapping(config)) = m.get(key) {
            if let Some(s) = str_of(config, &["format"]) {
                found.push(Found::Text(s.to_string()));
            }
            if let Some(Value::Mapping(j)) = any_of(config, &["json_format", "jsonFormat"]) {
                found.push(Found::Json(json_entries(j)));
            }
        }
    }
    if let Some(Value::Mapping(lf)) = any_of(m, &["log_format", "logFormat"]) {
        // Envoy's SubstitutionFormatString.
        if let Some(s) = str_of(lf, &["text_format", "textFormat"]) {
            found.push(Found::Text(s.to_string()));
        }
        if let Some(Value::Mapping(source)) =
            any_of(lf, &["text_format_source", "textFormatSource"])
            && let Some(s) = str_of(source, &["inline_string", "inlineString"])
        {
            found.push(Found::Text(s.to_string()));
        }
        if let Some(Value::Mapping(j)) = any_of(lf, &["json_format", "jsonFormat"]) {
            found.push(Found::Json(json_entries(j)));
        }
        // Istio's MeshConfig.ExtensionProvider.EnvoyFileAccessLogProvider.LogFormat.
        if let Some(s) = str_of(lf, &["text"]) {
            found.push(Found::Text(s.to_string()));
        }
        if let Some(Value::Mapping(j)) = lf.get("labels") {
            found.push(Found::Json(json_entries(j)));
        }
    }
    // An envoyFileAccessLog provider without a log format logs Istio's default.
    if let Some(Value::Mapping(provider)) = m.get("envoyFileAccessLog") {
        let custom = match provider.get("logFormat") {
            Some(Value::Mapping(lf)) => lf.contains_key("text") || lf.contains_key("labels"),
            _ => false,
        };
        if !custom {
            found.push(Found::Builtin(builtin_name("istio")));
        }
    }
    // Istio mesh config.
    let json = str_of(m, &["accessLogEncoding"]).is_some_and(|e| e.eq_ignore_ascii_case("JSON"));
    match str_of(m, &["accessLogFormat"]) {
        Some(f) if !f.trim().is_empty() => {
            if json {
                let dict: serde_json::Map<String, serde_json::Value> = serde_json::from_str(f)
                    .map_err(|e| {
                        format!(
                            "accessLogFormat with accessLogEncoding JSON is not a JSON object: {e}"
                        )
                    })?;
                let entries = dict
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
                    .collect();
                found.push(Found::Json(entries));
            } else {
                found.push(Found::Text(f.to_string()));
            }
        }
        _ if str_of(m, &["accessLogFile"]).is_some_and(|f| !f.trim().is_empty()) => {
            found.push(Found::Builtin(builtin_name(if json {
                "istio-json"
            } else {
                "istio"
            })));
        }
        _ => {}
    }
    // The `istio` ConfigMap carries mesh config as a YAML string under `data.mesh`.
    if let Some(mesh) = str_of(m, &["mesh"])
        && let Some(docs) = yaml_documents(mesh)
    {
        for doc in &docs {
            search(doc, found)?;
        }
    }
    Ok(())
}

/// The static name of a built-in (names in [`Found`] outlive the file text).
fn builtin_name(name: &str) -> &'static str {
    builtin::NAMES
        .iter()
        .copied()
        .find(|n| *n == name)
        .unwrap_or("istio")
}

fn any_of<'m>(m: &'m Mapping, keys: &[&str]) -> Option<&'m Value> {
    keys.iter().find_map(|k| m.get(*k))
}

fn str_of<'m>(m: &'m Mapping, keys: &[&str]) -> Option<&'m str> {
    any_of(m, keys).and_then(Value::as_str)
}

/// The string entries of a JSON-format dictionary; nested values are not read.
fn json_entries(m: &Mapping) -> Vec<(String, String)> {
    m.iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_and_comments() {
        let found =
            find_formats("# my format\n%START_TIME% %REQUESTED_SERVER_NAME%\\n\n\n").unwrap();
        assert_eq!(
            found,
            vec![Found::Text(
                "%START_TIME% %REQUESTED_SERVER_NAME%\\n".into()
            )]
        );
    }

    #[test]
    fn quoted_string_is_decoded() {
        let found = find_formats("\"[%START_TIME%] \\\"%REQ(:METHOD)%\\\"\\n\"\n").unwrap();
        assert_eq!(
            found,
            vec![Found::Text("[%START_TIME%] \"%REQ(:METHOD)%\"\n".into())]
        );
    }

    #[test]
    fn structured_yaml_without_a_format_finds_nothing() {
        assert_eq!(
            find_formats("apiVersion: v1\nkind: ConfigMap\ndata: {}\n").unwrap(),
            vec![]
        );
    }

    #[test]
    fn mesh_config_defaults() {
        assert_eq!(
            find_formats("accessLogFile: /dev/stdout\n").unwrap(),
            vec![Found::Builtin("istio")]
        );
        assert_eq!(
            find_formats("accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n").unwrap(),
            vec![Found::Builtin("istio-json")]
        );
        assert!(
            find_formats("accessLogEncoding: JSON\naccessLogFormat: '[not json'\n")
                .unwrap_err()
                .contains("JSON")
        );
    }
}
