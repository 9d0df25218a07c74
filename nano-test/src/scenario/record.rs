//! Recording scenarios on running servers: every process writes the call trees it served to a
//! directory, and the fragments of one request tree are joined by request id.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nano::{AnyRequest, ClientHook, Ctx, Edge, Outcome, Service, SharedService};
use serde::{Deserialize, Serialize};

use super::file::{FORMAT_VERSION, ScenarioError};
use crate::calltree::{CallNode, CallRecorder};

/// The part of a request tree one process saw: the calls it served (roots) and the calls they
/// caused, in-process or to other processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fragment {
    /// The format version, as in scenario files.
    pub version: u32,
    /// The process that recorded it (e.g. `server2a`).
    pub process: String,
    /// The tree, with request ids kept: they join the fragments.
    pub tree: CallNode,
}

/// A [`ClientHook`] for servers: records every call of the set and, each time a call served from
/// outside the process (a root here) finishes, writes its tree as a [`Fragment`] file to a
/// directory. [`join_fragments`] assembles the fragments of several processes into whole trees.
///
/// Files are named `<request id>.<process>.<n>.json`, so a directory can be shared by every
/// process of a deployment.
#[derive(Clone)]
pub struct DirectoryRecorder {
    recorder: CallRecorder,
    dir: Arc<PathBuf>,
    process: Arc<str>,
    written: Arc<AtomicU64>,
}

impl DirectoryRecorder {
    /// Records into `dir` (created if missing) on behalf of `process`.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created.
    pub fn new(dir: impl Into<PathBuf>, process: &str) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(DirectoryRecorder {
            recorder: CallRecorder::new(),
            dir: Arc::new(dir),
            process: process.into(),
            written: Arc::default(),
        })
    }

    /// How many fragments were written.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    fn flush(&self) {
        for tree in self.recorder.take_finished_trees() {
            let n = self.written.fetch_add(1, Ordering::Relaxed) + 1;
            let id = file_id(&tree.request_id);
            // Zero-padded so that file names sort in the order they were written.
            let path = self.dir.join(format!("{id}.{}.{n:08}.json", self.process));
            let fragment = Fragment {
                version: FORMAT_VERSION,
                process: self.process.to_string(),
                tree,
            };
            let text = serde_json::to_string_pretty(&fragment).unwrap_or_default();
            // Recording must never break serving: a write failure is logged, not returned.
            if let Err(err) = std::fs::write(&path, text + "\n") {
                tracing::warn!(path = %path.display(), error = %err, "cannot write a recorded call tree");
            }
        }
    }
}

impl ClientHook for DirectoryRecorder {
    fn wrap(&self, edge: &Edge, next: SharedService) -> SharedService {
        SharedService::new(FlushOnRoot {
            owner: self.clone(),
            inner: self.recorder.wrap(edge, next),
        })
    }
}

/// Writes the finished trees after each call served from outside the process.
struct FlushOnRoot {
    owner: DirectoryRecorder,
    inner: SharedService,
}

impl Service for FlushOnRoot {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        // Flushes when the call is over, also when its caller drops it (a client that went
        // away, a deadline): the recorder then holds the call as unfinished, and it must not
        // stay in memory.
        let _flush = (!self.owner.recorder.in_recorded_call()).then(|| FlushOnDrop(&self.owner));
        self.inner.handle(ctx, req).await
    }
}

/// Writes the finished trees when dropped, after the call it guards (declared before the call's
/// future, it is dropped after it).
struct FlushOnDrop<'a>(&'a DirectoryRecorder);

impl Drop for FlushOnDrop<'_> {
    fn drop(&mut self) {
        self.0.flush();
    }
}

/// Reads every fragment file in `dir`.
///
/// # Errors
///
/// The first file that cannot be read or is not a fragment, named with the problem.
pub fn read_fragments(dir: impl AsRef<Path>) -> Result<Vec<Fragment>, ScenarioError> {
    read_matching(dir.as_ref(), |_| true)
}

/// Reads the fragment files of the request tree `request_id` in `dir` (by their file names, so
/// without parsing the others).
///
/// # Errors
///
/// As [`read_fragments`].
pub fn read_fragments_of(
    dir: impl AsRef<Path>,
    request_id: &str,
) -> Result<Vec<Fragment>, ScenarioError> {
    let prefix = format!("{}.", file_id(request_id));
    read_matching(dir.as_ref(), |name| name.starts_with(&prefix))
}

/// The part of a fragment's file name that stands for its request id.
fn file_id(request_id: &str) -> String {
    request_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

fn read_matching(
    dir: &Path,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<Fragment>, ScenarioError> {
    let error = |file: &Path, problem: String| ScenarioError {
        file: file.to_owned(),
        line: None,
        path: None,
        problem,
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|err| error(dir, format!("cannot read the recording directory: {err}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| p.file_name().is_some_and(|n| wanted(&n.to_string_lossy())))
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file)
                .map_err(|err| error(file, format!("cannot read the file: {err}")))?;
            serde_json::from_str::<Fragment>(&text).map_err(|err| ScenarioError {
                file: file.clone(),
                line: Some((err.line(), err.column())),
                path: None,
                problem: format!("not a recorded fragment: {err}"),
            })
        })
        .collect()
}

/// Joins the fragments of request trees recorded by several processes into one tree per root
/// request: a call one process made to another (a transport client's call, with no children
/// there) gets the calls the other process recorded while serving it. Fragments are matched by
/// request id, caller, service, request type and body.
///
/// Returns the whole trees sorted by request id; trees of one request id (a client that reused an
/// id) in the order of the fragments.
pub fn join_fragments(fragments: Vec<Fragment>) -> Vec<CallNode> {
    let mut by_request: BTreeMap<String, Vec<CallNode>> = BTreeMap::new();
    for fragment in fragments {
        by_request
            .entry(fragment.tree.request_id.clone())
            .or_default()
            .push(fragment.tree);
    }
    let mut whole = Vec::new();
    for (_, mut trees) in by_request {
        // A fragment is served by another fragment's call when that call has the same edge,
        // request and body; the rest are the roots of the request tree.
        // Only a leaf below another fragment's root can be served by a fragment: two roots
        // with the same request (a client retrying with the same id) are both roots.
        let served: Vec<bool> = (0..trees.len())
            .map(|i| {
                trees.iter().enumerate().any(|(j, other)| {
                    j != i
                        && other.iter().skip(1).any(|node| {
                            node.calls.is_empty() && same_call_and_body(node, &trees[i])
                        })
                })
            })
            .collect();
        let mut pool: Vec<Option<CallNode>> = Vec::new();
        let mut roots = Vec::new();
        for (tree, is_served) in trees.drain(..).zip(served) {
            if is_served {
                pool.push(Some(tree));
            } else {
                roots.push(tree);
            }
        }
        for mut root in roots {
            graft(&mut root, &mut pool);
            whole.push(root);
        }
    }
    whole
}

fn same_call_and_body(a: &CallNode, b: &CallNode) -> bool {
    a.caller == b.caller && a.service == b.service && a.request == b.request && a.body == b.body
}

/// Fills in the children of every leaf call of `node` from a fragment that served it.
fn graft(node: &mut CallNode, pool: &mut Vec<Option<CallNode>>) {
    if node.calls.is_empty() {
        let served = pool
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(|t| same_call_and_body(t, node)))
            .and_then(Option::take);
        if let Some(served) = served {
            node.calls = served.calls;
        }
    }
    for call in &mut node.calls {
        graft(call, pool);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_files_are_found_by_request_id() {
        let dir = std::env::temp_dir().join(format!("fragments-by-id-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (id, n) in [("abc", 1), ("abcd", 2), ("abc", 3)] {
            let tree: CallNode = serde_json::from_value(serde_json::json!({
                "caller": "c", "service": "s", "request": "s.Req", "request_id": id,
                "body": {}, "outcome": "unfinished"
            }))
            .unwrap();
            let fragment = Fragment {
                version: FORMAT_VERSION,
                process: "p".into(),
                tree,
            };
            std::fs::write(
                dir.join(format!("{id}.p.{n:08}.json")),
                serde_json::to_string(&fragment).unwrap(),
            )
            .unwrap();
        }
        assert_eq!(read_fragments_of(&dir, "abc").unwrap().len(), 2);
        assert_eq!(read_fragments_of(&dir, "abcd").unwrap().len(), 1);
        assert_eq!(read_fragments(&dir).unwrap().len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
