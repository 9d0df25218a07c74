//! Fragment files: the part of a request tree one process recorded, read back from a recording
//! directory and joined into whole trees by request id.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::deep::deep;
use crate::tree::CallNode;

/// The part of a request tree one process saw: the calls it served (roots) and the calls they
/// caused, in-process or to other processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fragment {
    /// The format version, [`FORMAT_VERSION`](crate::FORMAT_VERSION).
    pub version: u32,
    /// The process that recorded it (e.g. `server2a`).
    pub process: String,
    /// The tree, with request ids kept: they join the fragments.
    pub tree: CallNode,
}

/// Why the fragments of a recording directory could not be read: the file, where in it, and what
/// is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentError {
    /// The file, or the directory when it cannot be read.
    pub file: PathBuf,
    /// Line and column (from 1), when known.
    pub line: Option<(usize, usize)>,
    /// The problem.
    pub problem: String,
}

impl fmt::Display for FragmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.line {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl std::error::Error for FragmentError {}

/// Reads every fragment in `dir`: the segment files (`*.jsonl`, one fragment a line) and files
/// of one fragment each (`*.json`).
///
/// A last line without its newline is a fragment still being written, and is skipped.
///
/// # Errors
///
/// The first file that cannot be read or holds something that is not a fragment, named with the
/// line and the problem.
pub fn read_fragments(dir: impl AsRef<Path>) -> Result<Vec<Fragment>, FragmentError> {
    read_matching(dir.as_ref(), None)
}

/// Reads the fragments of the request tree `request_id` in `dir`. Only the request id of the
/// other fragments is read, not their trees.
///
/// # Errors
///
/// As [`read_fragments`].
pub fn read_fragments_of(
    dir: impl AsRef<Path>,
    request_id: &str,
) -> Result<Vec<Fragment>, FragmentError> {
    read_matching(dir.as_ref(), Some(request_id))
}

/// Just the request id of a fragment.
#[derive(Deserialize)]
struct FragmentId {
    tree: TreeId,
}

#[derive(Deserialize)]
struct TreeId {
    #[serde(default)]
    request_id: String,
}

fn parse_deep<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    // The tree's own deserialization grows the stack, so deep trees are read too.
    deserializer.disable_recursion_limit();
    let value = T::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

fn read_matching(dir: &Path, request_id: Option<&str>) -> Result<Vec<Fragment>, FragmentError> {
    let error = |file: &Path, line: Option<(usize, usize)>, problem: String| FragmentError {
        file: file.to_owned(),
        line,
        problem,
    };
    let entries = std::fs::read_dir(dir).map_err(|err| {
        error(
            dir,
            None,
            format!("cannot read the recording directory: {err}"),
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json" || e == "jsonl"))
        .collect();
    files.sort();
    let mut fragments = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|err| error(file, None, format!("cannot read the file: {err}")))?;
        let segment = file.extension().is_some_and(|e| e == "jsonl");
        let lines: Vec<(usize, &str)> = if segment {
            let complete = text.rfind('\n').map_or("", |end| &text[..end]);
            complete
                .split('\n')
                .enumerate()
                .filter(|(_, line)| !line.trim().is_empty())
                .collect()
        } else {
            vec![(0, text.as_str())]
        };
        for (n, line) in lines {
            let located = |err: serde_json::Error| {
                let (at, column) = if segment {
                    (n + 1, err.column())
                } else {
                    (err.line(), err.column())
                };
                error(
                    file,
                    Some((at, column)),
                    format!("not a recorded fragment: {err}"),
                )
            };
            if let Some(wanted) = request_id {
                let id: FragmentId = parse_deep(line).map_err(located)?;
                if id.tree.request_id != wanted {
                    continue;
                }
            }
            fragments.push(parse_deep::<Fragment>(line).map_err(located)?);
        }
    }
    Ok(fragments)
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
    deep(|| {
        if node.calls.is_empty() {
            let served = pool
                .iter_mut()
                .find(|slot| slot.as_ref().is_some_and(|t| same_call_and_body(t, node)))
                .and_then(Option::take);
            if let Some(mut served) = served {
                node.calls = std::mem::take(&mut served.calls);
            }
        }
        for call in &mut node.calls {
            graft(call, pool);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::FORMAT_VERSION;

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
