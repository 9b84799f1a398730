//! The state file of `watch --state FILE`: the aggregate and each container's
//! log cursor, so a restarted watch resumes its windows with nothing lost and
//! nothing counted twice.
//!
//! Layout: the magic `STRICTLY-STATE\n`, a format version (u32, little
//! endian), then the postcard encoding of [`SavedState`]. Saved by writing a
//! sibling temporary file, syncing it, and renaming it over the old one, so a
//! crash leaves either the old state or the new. A file that is not a state
//! file, has another version or does not decode is an error: never silently
//! overwritten.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregator;
use crate::source::kube::follow::Cursor;

const MAGIC: &[u8] = b"STRICTLY-STATE\n";
/// Bump when [`SavedState`] (or anything inside it) changes shape.
pub const VERSION: u32 = 3;

/// What a watch keeps across restarts.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedState {
    pub aggregator: Aggregator,
    /// Input names by index (the aggregate's streams refer to them).
    pub names: Vec<String>,
    /// Per container (`NS/pod/NAME/CONTAINER`): where its log was read to.
    pub cursors: HashMap<String, Cursor>,
}

/// A state file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("--state {path}: {message}")]
    Unusable { path: PathBuf, message: String },
}

fn unusable(path: &Path, message: impl Into<String>) -> StateError {
    StateError::Unusable {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The sibling a save writes first (then renames over `path`): the whole
/// name plus `.tmp`, so `state` and `state.old` never share one.
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Checks at startup that the state can be saved where asked (issue 7 item
/// 20): a watch that only finds out at its first save, 30 s or a day in,
/// has run without the protection the user asked for.
pub fn check_writable(path: &Path) -> Result<(), StateError> {
    if path.is_dir() {
        return Err(unusable(path, "is a directory, not a file"));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(unusable(
            path,
            format!("directory {} does not exist", dir.display()),
        ));
    }
    let probe = temporary(path);
    std::fs::File::create(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| {
            unusable(
                path,
                format!("cannot write in {}: {}", dir.display(), plain_io(&e)),
            )
        })
}

/// An I/O error without Rust's `(os error N)` tail.
fn plain_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_lowercase(),
        None => text,
    }
}

/// Loads a state file; `Ok(None)` when it does not exist yet.
pub fn load(path: &Path) -> Result<Option<SavedState>, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unusable(path, format!("cannot read it: {}", plain_io(&e)))),
    };
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| unusable(path, "not a strictly state file (refusing to overwrite it; move it away or pick another path)"))?;
    let (version, payload) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| unusable(path, "truncated state file (refusing to overwrite it)"))?;
    let version = u32::from_le_bytes(*version);
    if version != VERSION {
        return Err(unusable(
            path,
            format!(
                "state format version {version}, this strictly reads version {VERSION} (refusing to overwrite it)"
            ),
        ));
    }
    // postcard's own words ("Hit the end of buffer, expected more data")
    // describe its decoder, not the file: say what is wrong with the file.
    let state: SavedState = postcard::from_bytes(payload).map_err(|_| {
        unusable(
            path,
            format!(
                "corrupt state file: its {} bytes do not decode as a version {VERSION} state (refusing to overwrite it; move it away to start afresh)",
                payload.len()
            ),
        )
    })?;
    // A file that decodes may still not be a state this strictly wrote (found by fuzzing).
    state.aggregator.check_consistent().map_err(|e| {
        unusable(
            path,
            format!("corrupt state file: {e} (refusing to overwrite it)"),
        )
    })?;
    Ok(Some(state))
}

/// Saves the state by atomic replace.
pub fn save(
    path: &Path,
    aggregator: &Aggregator,
    names: &[String],
    cursors: &HashMap<String, Cursor>,
) -> Result<(), StateError> {
    #[derive(Serialize)]
    struct SavedRef<'a> {
        aggregator: &'a Aggregator,
        names: &'a [String],
        cursors: &'a HashMap<String, Cursor>,
    }
    let payload = postcard::to_stdvec(&SavedRef {
        aggregator,
        names,
        cursors,
    })
    .map_err(|e| unusable(path, format!("cannot encode the state: {e}")))?;
    let tmp = temporary(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&VERSION.to_le_bytes())?;
        f.write_all(&payload)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| unusable(path, format!("cannot save: {}", plain_io(&e))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::AggregateConfig;
    use crate::envelope::StreamMeta;
    use crate::request::{Request, Transport};

    fn some_state() -> Aggregator {
        let mut agg = Aggregator::new(AggregateConfig {
            destination: Some("ns/web".into()),
            ..Default::default()
        });
        let s = agg.stream(0, "in", &StreamMeta::default(), None);
        for t in [1_000, 2_500, 9_999] {
            let req = Request {
                inbound: true,
                time_ms: Some(t),
                transport: Transport::Plaintext { forged_xfcc: false },
                peer: Some(b"10.0.0.1"),
                named_destination: None,
                local_address: None,
                audited: true,
                duration_ms: Some(7),
                caller: None,
                ambient: None,
            };
            agg.record(s, &req, None);
        }
        agg
    }

    #[test]
    fn round_trip_keeps_counts_and_cursors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let agg = some_state();
        let cursors = HashMap::from([(
            "ns/pod/p/c".to_string(),
            Cursor {
                last_ns: 42,
                count_at_last: 2,
            },
        )]);
        save(&path, &agg, &["in".into()], &cursors).unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.cursors, cursors);
        let before = agg.resolve();
        let after = back.aggregator.resolve();
        let w = crate::aggregate::Window {
            start_ms: 0,
            end_ms: 10_000,
        };
        assert_eq!(
            before.destinations[0].sources[0].cell.counts_in(&w),
            after.destinations[0].sources[0].cell.counts_in(&w)
        );
        assert_eq!(
            before.destinations[0].sources[0]
                .cell
                .durations_in(&w)
                .map(|h| h.len()),
            after.destinations[0].sources[0]
                .cell
                .durations_in(&w)
                .map(|h| h.len())
        );
    }

    #[test]
    fn foreign_corrupt_or_future_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        assert!(load(&path).unwrap().is_none(), "missing is fine");
        std::fs::write(&path, b"{\"not\": \"ours\"}").unwrap();
        assert!(
            load(&path)
                .unwrap_err()
                .to_string()
                .contains("not a strictly state file")
        );
        let mut future = MAGIC.to_vec();
        future.extend_from_slice(&99u32.to_le_bytes());
        std::fs::write(&path, &future).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("version 99"));
        let mut corrupt = MAGIC.to_vec();
        corrupt.extend_from_slice(&VERSION.to_le_bytes());
        corrupt.extend_from_slice(&[0xff; 7]);
        std::fs::write(&path, &corrupt).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("corrupt"));
        // Refused files are left as they were.
        assert_eq!(std::fs::read(&path).unwrap(), corrupt);
    }
}
