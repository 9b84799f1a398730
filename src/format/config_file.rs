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
use std::collections::HashSet;
use std::io::Read as _;
use std::path::Path;

/// Largest format file read: Istio's own ConfigMaps are a few KiB. Without a
/// cap `/dev/zero` grew to 7 GB (issue 7 item 16).
pub(crate) const MAX_FILE_BYTES: u64 = 4 << 20;

/// Deepest `[`/`{` nesting accepted: real configs nest a handful of levels;
/// 500 KB of nested flow maps took the YAML parser 30 s.
const MAX_FLOW_DEPTH: usize = 64;

/// How many `mesh:` strings may nest (the `istio` ConfigMap has one); each
/// level is parsed again, so unbounded nesting cost 577 MB for 1.4 MB.
const MAX_MESH_DEPTH: usize = 2;

/// Most distinct formats a file may define: every line is tried against each.
pub(crate) const MAX_FORMATS: usize = 64;

/// A format found in a file, before compiling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
    let bytes = read_capped(path).map_err(&file_error)?;
    let text = String::from_utf8(bytes).map_err(|_| file_error("not a UTF-8 text file".into()))?;
    let found = find_formats(&text).map_err(&file_error)?;
    if found.len() > MAX_FORMATS {
        return Err(file_error(format!(
            "{} access-log formats: strictly tries every format on every line and reads at most {MAX_FORMATS}",
            found.len()
        )));
    }
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

/// Reads at most [`MAX_FILE_BYTES`] (special files such as `/dev/zero` never end).
fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "larger than {} MiB: not an access-log format or Istio config file",
            MAX_FILE_BYTES >> 20
        ));
    }
    Ok(bytes)
}

/// Finds formats in a file's text: YAML first, else plain format strings.
fn find_formats(text: &str) -> Result<Vec<Found>, String> {
    check_flow_depth(text)?;
    let mut found = Vec::new();
    if let Some(docs) = yaml_documents(text) {
        for doc in &docs {
            search(doc, &mut found, 0)?;
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

/// Refuses text whose `[`/`{` nesting is deeper than [`MAX_FLOW_DEPTH`]
/// before the YAML parser sees it (quoted text and comments are skipped).
fn check_flow_depth(text: &str) -> Result<(), String> {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let mut prev = b'\n';
    for &b in text.as_bytes() {
        match (quote, b) {
            _ if comment => comment = b != b'\n',
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'#') if prev.is_ascii_whitespace() => comment = true,
            (None, b'[' | b'{') => {
                depth += 1;
                max = max.max(depth);
            }
            (None, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = b;
    }
    if max > MAX_FLOW_DEPTH {
        return Err(format!(
            "YAML nested {max} levels deep (at most {MAX_FLOW_DEPTH}): not an access-log config"
        ));
    }
    Ok(())
}

/// Drops repeated formats, keeping the first of each (in file order).
fn dedup(found: Vec<Found>) -> Vec<Found> {
    let mut seen = HashSet::with_capacity(found.len());
    found
        .into_iter()
        .filter(|f| seen.insert(f.clone()))
        .collect()
}

/// Walks a YAML tree, inspecting every mapping; `mesh` counts the `mesh:` strings it is inside.
fn search(value: &Value, found: &mut Vec<Found>, mesh: usize) -> Result<(), String> {
    match value {
        Value::Mapping(m) => {
            inspect(m, found, mesh)?;
            for (_, child) in m {
                search(child, found, mesh)?;
            }
        }
        Value::Sequence(items) => {
            for item in items {
                search(item, found, mesh)?;
            }
        }
        Value::Tagged(t) => search(&t.value, found, mesh)?,
        _ => {}
    }
    Ok(())
}

/// Looks for access-log settings directly in one mapping (its children are searched by the caller).
fn inspect(m: &Mapping, found: &mut Vec<Found>, mesh_depth: usize) -> Result<(), String> {
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
    if let Some(mesh) = str_of(m, &["mesh"]) {
        if mesh_depth >= MAX_MESH_DEPTH {
            return Err(format!(
                "`mesh:` strings nested more than {MAX_MESH_DEPTH} deep: not an Istio config"
            ));
        }
        check_flow_depth(mesh)?;
        if let Some(docs) = yaml_documents(mesh) {
            for doc in &docs {
                search(doc, found, mesh_depth + 1)?;
            }
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

    #[test]
    fn issue_7_16_deep_flow_nesting_is_refused_before_parsing() {
        let deep = format!("a: {}1{}\n", "{b: ".repeat(100_000), "}".repeat(100_000));
        let t = std::time::Instant::now();
        assert!(find_formats(&deep).unwrap_err().contains("nested"));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        // Brackets inside quotes and comments do not count.
        let quoted = format!(
            "accessLogFormat: '{} %DOWNSTREAM_PEER_URI_SAN%' # {}\n",
            "[".repeat(100),
            "{".repeat(100)
        );
        assert_eq!(find_formats(&quoted).unwrap().len(), 1);
    }

    #[test]
    fn issue_7_16_nested_mesh_strings_are_bounded() {
        let inner = "accessLogFormat: '%START_TIME% %DOWNSTREAM_PEER_URI_SAN%'";
        let level = |text: &str| {
            let indented: String = text.lines().map(|l| format!("  {l}\n")).collect();
            format!("mesh: |\n{indented}")
        };
        let one = level(inner);
        assert_eq!(find_formats(&one).unwrap().len(), 1);
        let two = level(&one);
        assert_eq!(find_formats(&two).unwrap().len(), 1);
        let three = level(&two);
        assert!(find_formats(&three).unwrap_err().contains("nested"));
    }

    #[test]
    fn issue_7_16_dedup_is_linear_and_keeps_file_order() {
        let mut text = String::new();
        for i in 0..50_000 {
            text.push_str(&format!(
                "%START_TIME% {} %DOWNSTREAM_PEER_URI_SAN%\n",
                i % 3
            ));
        }
        let t = std::time::Instant::now();
        let found = find_formats(&text).unwrap();
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(
            found,
            (0..3)
                .map(|i| Found::Text(format!("%START_TIME% {i} %DOWNSTREAM_PEER_URI_SAN%")))
                .collect::<Vec<_>>()
        );
    }
}
