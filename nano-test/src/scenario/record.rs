//! Recording scenarios on running servers: every process appends the call trees it served to
//! segment files in a directory, off the request path and under a size cap, and the fragments of
//! one request tree are joined by request id.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

use nano::{AnyRequest, ClientHook, Ctx, Edge, Outcome, Service, SharedService};
use serde::{Deserialize, Serialize};

use super::file::{FORMAT_VERSION, ScenarioError};
use crate::calltree::{CallNode, CallRecorder};
use crate::deep::deep;

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

/// The default of [`RecordLimits::max_bytes`]: 64 MiB of fragments per process.
pub const DEFAULT_RECORD_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The default of [`RecordLimits::queue`]: fragments waiting to be written.
pub const DEFAULT_RECORD_QUEUE: usize = 1024;

/// How many segment files the size cap is spread over: when the cap is reached the oldest
/// segment goes, so about this fraction of the recording is lost at once.
const SEGMENTS: u64 = 8;

/// What a [`DirectoryRecorder`] may hold, on disk and in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// The most bytes of fragment files this process keeps in the directory. Fragments are
    /// appended to segment files of an eighth of this; when a new one would pass the cap, the
    /// oldest segments are removed. A single fragment larger than the cap is dropped.
    pub max_bytes: u64,
    /// How many finished request trees may wait for the writer; when the queue is full a tree
    /// is dropped and counted rather than making a request wait.
    pub queue: usize,
}

impl Default for RecordLimits {
    fn default() -> Self {
        RecordLimits {
            max_bytes: DEFAULT_RECORD_MAX_BYTES,
            queue: DEFAULT_RECORD_QUEUE,
        }
    }
}

/// A [`ClientHook`] for servers: records every call of the set and, each time a call served from
/// outside the process (a root here) finishes, hands its tree to a writer thread that appends it
/// as a [`Fragment`] to a segment file in a directory. [`join_fragments`] assembles the fragments
/// of several processes into whole trees.
///
/// Nothing on the request path touches the disk or waits: a finished tree goes into a bounded
/// queue, and when the queue is full it is dropped and counted ([`dropped`](Self::dropped),
/// logged as a warning). Fragments are compact JSON, one per line, in files named
/// `<process>.<segment>.jsonl` (the name never depends on a request id), and the files of one
/// process stay under [`RecordLimits::max_bytes`] by removing the oldest segment. A directory can
/// be shared by every process of a deployment. Dropping the last clone writes what is queued and
/// stops the writer.
#[derive(Clone)]
pub struct DirectoryRecorder {
    recorder: CallRecorder,
    process: Arc<str>,
    queue: Arc<Queue>,
}

/// The request path's end of the writer thread.
struct Queue {
    sender: Option<SyncSender<Message>>,
    writer: Option<std::thread::JoinHandle<()>>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    written: AtomicU64,
    dropped: AtomicU64,
    removed: AtomicU64,
}

enum Message {
    Tree(CallNode),
    Flush(SyncSender<()>),
}

impl Drop for Queue {
    fn drop(&mut self) {
        // Closing the channel lets the writer drain what is queued and end.
        self.sender.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl DirectoryRecorder {
    /// Records into `dir` (created if missing) on behalf of `process`, within the default
    /// [`RecordLimits`].
    ///
    /// # Errors
    ///
    /// When the directory cannot be created or read, or the writer thread cannot start.
    pub fn new(dir: impl Into<PathBuf>, process: &str) -> std::io::Result<Self> {
        Self::with_limits(dir, process, RecordLimits::default())
    }

    /// Records into `dir` (created if missing) on behalf of `process`, within `limits`.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_limits(
        dir: impl Into<PathBuf>,
        process: &str,
        limits: RecordLimits,
    ) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        let counts = Arc::new(Counts::default());
        let mut writer = SegmentWriter::open(dir, file_name_part(process), limits, counts.clone())?;
        let (sender, receiver) = mpsc::sync_channel(limits.queue.max(1));
        let writer = std::thread::Builder::new()
            .name("nano-recorder".into())
            .spawn(move || writer.run(&receiver))?;
        Ok(DirectoryRecorder {
            recorder: CallRecorder::new(),
            process: process.into(),
            queue: Arc::new(Queue {
                sender: Some(sender),
                writer: Some(writer),
                counts,
            }),
        })
    }

    /// How many fragments were written.
    pub fn written(&self) -> u64 {
        self.queue.counts.written.load(Ordering::Relaxed)
    }

    /// How many finished trees were not recorded: dropped because the queue was full, larger
    /// than the size cap, or not written because of an I/O error.
    pub fn dropped(&self) -> u64 {
        self.queue.counts.dropped.load(Ordering::Relaxed)
    }

    /// How many written fragments were removed with the oldest segment to stay under the cap.
    pub fn removed(&self) -> u64 {
        self.queue.counts.removed.load(Ordering::Relaxed)
    }

    /// Waits until every tree queued so far is written and flushed to its file. Blocks the
    /// thread: for tests and tools, never on a request path.
    pub fn flush(&self) {
        let (done, wait) = mpsc::sync_channel(1);
        if let Some(sender) = &self.queue.sender
            && sender.send(Message::Flush(done)).is_ok()
        {
            let _ = wait.recv();
        }
    }

    fn enqueue_finished(&self) {
        let Some(sender) = &self.queue.sender else {
            return;
        };
        for tree in self.recorder.take_finished_trees() {
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                sender.try_send(Message::Tree(tree))
            {
                let dropped = self.queue.counts.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Once per power of two, so a stalled disk does not also flood the log.
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        process = %self.process,
                        dropped,
                        "recording queue full: recorded call trees dropped"
                    );
                }
            }
        }
    }
}

impl fmt::Debug for DirectoryRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectoryRecorder")
            .field("process", &self.process)
            .field("written", &self.written())
            .field("dropped", &self.dropped())
            .finish()
    }
}

/// The writer thread's state: the segment files of this process, oldest first.
struct SegmentWriter {
    dir: PathBuf,
    process: String,
    max_bytes: u64,
    segment_bytes: u64,
    /// Every segment of this process in the directory: path, bytes, fragments.
    segments: VecDeque<(PathBuf, u64, u64)>,
    /// The last segment, open for appending.
    current: Option<BufWriter<File>>,
    total: u64,
    next: u64,
    counts: Arc<Counts>,
}

impl SegmentWriter {
    /// Takes over the segments an earlier run of the process left, so the cap holds across
    /// restarts.
    fn open(
        dir: PathBuf,
        process: String,
        limits: RecordLimits,
        counts: Arc<Counts>,
    ) -> std::io::Result<SegmentWriter> {
        let prefix = format!("{process}.");
        let mut found: Vec<(u64, PathBuf, u64)> = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let number = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".jsonl"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(number) = number {
                found.push((number, entry.path(), entry.metadata()?.len()));
            }
        }
        found.sort();
        let next = found.last().map_or(1, |(n, _, _)| n + 1);
        let total = found.iter().map(|(_, _, bytes)| bytes).sum();
        let max_bytes = limits.max_bytes.max(1);
        Ok(SegmentWriter {
            dir,
            process,
            max_bytes,
            segment_bytes: (max_bytes / SEGMENTS).max(1),
            // Lines are not counted in old segments: removing one counts no fragments.
            segments: found
                .into_iter()
                .map(|(_, path, bytes)| (path, bytes, 0))
                .collect(),
            current: None,
            total,
            next,
            counts,
        })
    }

    fn run(&mut self, queue: &Receiver<Message>) {
        while let Ok(message) = queue.recv() {
            self.handle(message);
            // Writes everything already queued, then flushes once.
            while let Ok(message) = queue.try_recv() {
                self.handle(message);
            }
            self.flush();
        }
        self.flush();
        tracing::info!(
            process = %self.process,
            written = self.counts.written.load(Ordering::Relaxed),
            dropped = self.counts.dropped.load(Ordering::Relaxed),
            removed = self.counts.removed.load(Ordering::Relaxed),
            "recording stopped"
        );
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Tree(tree) => {
                let fragment = Fragment {
                    version: FORMAT_VERSION,
                    process: self.process.clone(),
                    tree,
                };
                let mut line = serde_json::to_vec(&fragment).unwrap_or_default();
                line.push(b'\n');
                // Recording must never break serving: a failure is counted and logged.
                if let Err(err) = self.append(&line) {
                    let dropped = self.counts.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(
                        process = %self.process,
                        dir = %self.dir.display(),
                        error = %err,
                        dropped,
                        "cannot write a recorded call tree"
                    );
                }
            }
            Message::Flush(done) => {
                self.flush();
                let _ = done.send(());
            }
        }
    }

    fn flush(&mut self) {
        if let Some(Err(err)) = self.current.as_mut().map(Write::flush) {
            tracing::warn!(process = %self.process, error = %err, "cannot write recorded call trees");
            self.current = None;
        }
    }

    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        let len = line.len() as u64;
        if len > self.max_bytes {
            return Err(std::io::Error::other(format!(
                "a fragment of {len} bytes is larger than the recording cap of {} bytes",
                self.max_bytes
            )));
        }
        if self.current.is_some()
            && self
                .segments
                .back()
                .is_some_and(|s| s.1 + len > self.segment_bytes)
        {
            self.flush();
            self.current = None;
        }
        while self.total + len > self.max_bytes {
            let Some((path, bytes, fragments)) = self.segments.pop_front() else {
                break;
            };
            if self.segments.is_empty() {
                self.current = None;
            }
            std::fs::remove_file(&path).or_else(|err| match err.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(err),
            })?;
            self.total -= bytes;
            self.counts.removed.fetch_add(fragments, Ordering::Relaxed);
            tracing::info!(
                process = %self.process,
                file = %path.display(),
                fragments,
                "recording cap reached: removed the oldest segment"
            );
        }
        if self.current.is_none() {
            // Zero-padded so that file names sort in the order they were written.
            let path = self
                .dir
                .join(format!("{}.{:08}.jsonl", self.process, self.next));
            self.next += 1;
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            self.current = Some(BufWriter::with_capacity(64 * 1024, file));
            self.segments.push_back((path, 0, 0));
        }
        if let (Some(file), Some(segment)) = (self.current.as_mut(), self.segments.back_mut()) {
            file.write_all(line)?;
            segment.1 += len;
            segment.2 += 1;
            self.total += len;
            self.counts.written.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
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

/// Queues the finished trees after each call served from outside the process.
struct FlushOnRoot {
    owner: DirectoryRecorder,
    inner: SharedService,
}

impl Service for FlushOnRoot {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        // Queues when the call is over, also when its caller drops it (a client that went
        // away, a deadline): the recorder then holds the call as unfinished, and it must not
        // stay in memory.
        let _flush = (!self.owner.recorder.in_recorded_call()).then(|| FlushOnDrop(&self.owner));
        self.inner.handle(ctx, req).await
    }
}

/// Queues the finished trees when dropped, after the call it guards (declared before the call's
/// future, it is dropped after it).
struct FlushOnDrop<'a>(&'a DirectoryRecorder);

impl Drop for FlushOnDrop<'_> {
    fn drop(&mut self) {
        self.0.enqueue_finished();
    }
}

/// Reads every fragment in `dir`: the segment files (`*.jsonl`, one fragment a line) and files
/// of one fragment each (`*.json`).
///
/// A last line without its newline is a fragment still being written, and is skipped.
///
/// # Errors
///
/// The first file that cannot be read or holds something that is not a fragment, named with the
/// line and the problem.
pub fn read_fragments(dir: impl AsRef<Path>) -> Result<Vec<Fragment>, ScenarioError> {
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
) -> Result<Vec<Fragment>, ScenarioError> {
    read_matching(dir.as_ref(), Some(request_id))
}

/// The part of a file name that stands for a process name.
fn file_name_part(name: &str) -> String {
    let part: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    if part.is_empty() {
        "process".into()
    } else {
        part
    }
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

fn read_matching(dir: &Path, request_id: Option<&str>) -> Result<Vec<Fragment>, ScenarioError> {
    let error = |file: &Path, line: Option<(usize, usize)>, problem: String| ScenarioError {
        file: file.to_owned(),
        line,
        path: None,
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
