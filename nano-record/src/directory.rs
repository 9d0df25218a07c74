//! Recording on running servers: every process appends the call trees it served to segment
//! files in a directory, off the request path and under a size cap.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

use nano::{AnyRequest, ClientHook, Ctx, Edge, Outcome, Service, SharedService};

use crate::fragment::Fragment;
use crate::recorder::CallRecorder;
use crate::tree::{CallNode, FORMAT_VERSION};

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
/// as a [`Fragment`] to a segment file in a directory. [`join_fragments`](crate::join_fragments) assembles the fragments
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

    /// Redacts the secrets of the recorded trees by `redaction` instead of the default
    /// [`Redaction`](crate::Redaction) (which replaces passwords, tokens and API keys); call it
    /// before the recorder is installed as a hook.
    #[must_use]
    pub fn with_redaction(mut self, redaction: crate::Redaction) -> Self {
        self.recorder = CallRecorder::with_redaction(redaction);
        self
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
