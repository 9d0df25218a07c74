//! The call recorder: a [`ClientHook`] that records every call of a set and the tree of calls
//! each request caused.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use nano::{AnyRequest, ClientHook, Ctx, Edge, Outcome, Service, SharedService};
use serde_json::Value;

use crate::Json;
use crate::deep::deep;
use crate::redact::Redaction;
use crate::tree::{CallNode, CallOutcome};

/// One recorded call, flat: the typed request and outcome are kept, and `parent` links it to the
/// call during which it was made. [`CallRecorder::trees`] turns these into [`CallNode`]s.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// The record's number, unique within its recorder, in the order calls started.
    pub id: u64,
    /// The call during which this call was made, if it was made inside a recorded call.
    pub parent: Option<u64>,
    /// The caller and callee.
    pub edge: Edge,
    /// The context the client passed on (request id, caller, deadline, metadata…).
    pub ctx: Ctx,
    /// The request as the caller sent it.
    pub request: AnyRequest,
    /// How the call ended; `None` while running, or when the caller stopped waiting.
    pub outcome: Option<Outcome>,
    /// Whether the call is over: it answered, or its caller stopped waiting (then `outcome` is
    /// `None`).
    pub ended: bool,
}

impl CallRecord {
    /// The call as a tree node without children, its secrets redacted by the default
    /// [`Redaction`].
    pub fn to_node(&self) -> CallNode {
        self.to_node_with(&Redaction::default())
    }

    /// The call as a tree node without children, its secrets redacted by `redaction`.
    pub fn to_node_with(&self, redaction: &Redaction) -> CallNode {
        let mut body = self
            .request
            .to_json_value()
            .unwrap_or_else(|err| Value::String(format!("[cannot encode: {err}]")));
        redaction.redact(&mut body);
        let outcome = self
            .outcome
            .as_ref()
            .map_or(CallOutcome::Unfinished, CallOutcome::from_outcome);
        CallNode {
            caller: self.edge.caller().to_owned(),
            service: self.edge.callee().to_owned(),
            request: self.request.name().to_owned(),
            request_id: self.ctx.request_id().to_string(),
            body: Json::from(body),
            outcome: redaction.redact_outcome(&outcome),
            calls: Vec::new(),
        }
    }
}

tokio::task_local! {
    /// The recorded calls the current task is running inside, innermost last, as
    /// (recorder key, record id). Each recorder finds its own entry, so recorders stack.
    static CURRENT: Arc<Vec<(usize, u64)>>;
}

static NEXT_RECORDER_KEY: AtomicUsize = AtomicUsize::new(1);

/// A [`ClientHook`] that records every call made through the set's clients, and the tree of calls
/// each request caused.
///
/// Parent and child calls are linked through a tokio task-local: calls a handler makes directly
/// (also concurrently, with `join!`) are its children; calls made from a task the handler
/// `tokio::spawn`s show up as roots of their own.
///
/// ```
/// use nano::{Ctx, NanoError, ServiceSet};
/// use nano_record::CallRecorder;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # mod svc1 { nano::api! { service "svc1"; fn echo(super::Req) -> super::Resp = "svc1.Req"; } }
/// # struct Echo;
/// # impl svc1::Handler for Echo {
/// #     async fn echo(&self, _: &Ctx, r: Req) -> Result<Resp, NanoError> { Ok(Resp { value: r.param }) }
/// # }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), NanoError> {
/// let recorder = CallRecorder::new();
/// let set = ServiceSet::builder()
///     .service(svc1::service(|_| Ok(Echo)))
///     .hook(recorder.clone())
///     .build()?;
/// set.client("test", "svc1")?.call(&Ctx::new(), Req { param: "x".into() }).await?;
/// let tree = recorder.last_tree().expect("one call was made");
/// assert_eq!((tree.caller.as_str(), tree.service.as_str()), ("test", "svc1"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CallRecorder {
    inner: Arc<RecorderInner>,
}

struct RecorderInner {
    key: usize,
    redaction: Redaction,
    next_id: AtomicU64,
    records: Mutex<Vec<CallRecord>>,
}

impl CallRecorder {
    /// An empty recorder whose trees have their secrets redacted by the default
    /// [`Redaction`].
    pub fn new() -> Self {
        Self::with_redaction(Redaction::default())
    }

    /// An empty recorder whose trees have their secrets redacted by `redaction`;
    /// `Redaction::keep_secrets()` is the opt-in of a test that needs them.
    pub fn with_redaction(redaction: Redaction) -> Self {
        CallRecorder {
            inner: Arc::new(RecorderInner {
                key: NEXT_RECORDER_KEY.fetch_add(1, Ordering::Relaxed),
                redaction,
                next_id: AtomicU64::new(1),
                records: Mutex::new(Vec::new()),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<CallRecord>> {
        // A panic in a test while the lock is held must not hide the recorded calls.
        self.inner
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every call recorded so far, in the order the calls started.
    pub fn records(&self) -> Vec<CallRecord> {
        self.lock().clone()
    }

    /// How many calls were recorded.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no call was recorded.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets every recorded call.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The recorded calls as trees: one per call made outside any recorded call (usually one per
    /// request the test sent), in the order they started.
    pub fn trees(&self) -> Vec<CallNode> {
        self.build_trees(&self.records())
    }

    /// How this recorder redacts secrets in its trees.
    pub fn redaction(&self) -> &Redaction {
        &self.inner.redaction
    }

    fn build_trees(&self, records: &[CallRecord]) -> Vec<CallNode> {
        let ids: HashSet<u64> = records.iter().map(|r| r.id).collect();
        let mut children: HashMap<u64, Vec<&CallRecord>> = HashMap::new();
        let mut roots = Vec::new();
        for record in records {
            match record.parent {
                Some(parent) if ids.contains(&parent) => {
                    children.entry(parent).or_default().push(record);
                }
                _ => roots.push(record),
            }
        }
        fn build(
            record: &CallRecord,
            children: &HashMap<u64, Vec<&CallRecord>>,
            redaction: &Redaction,
        ) -> CallNode {
            deep(|| {
                let mut node = record.to_node_with(redaction);
                node.calls = children
                    .get(&record.id)
                    .map(|kids| {
                        kids.iter()
                            .map(|kid| build(kid, children, redaction))
                            .collect()
                    })
                    .unwrap_or_default();
                node
            })
        }
        let redaction = &self.inner.redaction;
        roots
            .into_iter()
            .map(|root| build(root, &children, redaction))
            .collect()
    }

    /// Removes every root call that is over (answered, or abandoned by its caller) and the calls
    /// below it from the recorder, and returns them as trees. A long-running recorder (e.g. on a server) calls this after each request so
    /// that memory holds only requests in flight.
    pub fn take_finished_trees(&self) -> Vec<CallNode> {
        let mut records = self.lock();
        let ids: HashSet<u64> = records.iter().map(|r| r.id).collect();
        let is_root = |r: &CallRecord| r.parent.is_none_or(|p| !ids.contains(&p));
        let mut taken: HashSet<u64> = records
            .iter()
            .filter(|r| is_root(r) && r.ended)
            .map(|r| r.id)
            .collect();
        if taken.is_empty() {
            return Vec::new();
        }
        // Records are in start order, so a parent is always seen before its children.
        for record in records.iter() {
            if record.parent.is_some_and(|p| taken.contains(&p)) {
                taken.insert(record.id);
            }
        }
        let (finished, kept): (Vec<_>, Vec<_>) =
            records.drain(..).partition(|r| taken.contains(&r.id));
        *records = kept;
        drop(records);
        self.build_trees(&finished)
    }

    /// Whether the current task is inside a call this recorder recorded (so a call it makes now
    /// is a child, not a root).
    pub fn in_recorded_call(&self) -> bool {
        let key = self.inner.key;
        CURRENT
            .try_with(|stack| stack.iter().any(|(k, _)| *k == key))
            .unwrap_or(false)
    }

    /// The tree of the most recently started root call.
    pub fn last_tree(&self) -> Option<CallNode> {
        self.trees().pop()
    }

    /// The trees of the request tree `request_id`, in the order they started.
    pub fn trees_for(&self, request_id: &str) -> Vec<CallNode> {
        self.trees()
            .into_iter()
            .filter(|tree| tree.request_id == request_id)
            .collect()
    }

    fn start(&self, parent: Option<u64>, edge: &Edge, ctx: &Ctx, request: &AnyRequest) -> u64 {
        // Ids come from a counter, not the last record, because finished trees are taken out.
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut records = self.lock();
        records.push(CallRecord {
            id,
            parent,
            edge: edge.clone(),
            ctx: ctx.clone(),
            request: request.clone(),
            outcome: None,
            ended: false,
        });
        id
    }

    /// Marks the call `id` as over, with its outcome, or without one when its caller stopped
    /// waiting.
    fn finish(&self, id: u64, outcome: Option<&Outcome>) {
        if let Some(record) = self.lock().iter_mut().rev().find(|r| r.id == id) {
            record.outcome = outcome.cloned();
            record.ended = true;
        }
    }
}

impl Default for CallRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallRecorder")
            .field("calls", &self.len())
            .finish()
    }
}

impl ClientHook for CallRecorder {
    fn wrap(&self, edge: &Edge, next: SharedService) -> SharedService {
        SharedService::new(Recording {
            recorder: self.clone(),
            edge: edge.clone(),
            next,
        })
    }
}

/// The service a recorder puts in front of each callee.
struct Recording {
    recorder: CallRecorder,
    edge: Edge,
    next: SharedService,
}

impl Service for Recording {
    fn name(&self) -> &str {
        self.edge.callee()
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let key = self.recorder.inner.key;
        let stack = CURRENT.try_with(Arc::clone).unwrap_or_default();
        let parent = stack
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, id)| *id);
        let id = self.recorder.start(parent, &self.edge, &ctx, &req);
        // Marks the call as over even when the caller drops it mid-way.
        let mut ended = EndOnDrop {
            recorder: &self.recorder,
            id,
            done: false,
        };
        let mut inner = Vec::clone(&stack);
        inner.push((key, id));
        let outcome = CURRENT
            .scope(Arc::new(inner), self.next.handle(ctx, req))
            .await;
        self.recorder.finish(id, Some(&outcome));
        ended.done = true;
        outcome
    }
}

/// Records that a call ended without an outcome when its future is dropped before it finished.
struct EndOnDrop<'a> {
    recorder: &'a CallRecorder,
    id: u64,
    done: bool,
}

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.recorder.finish(self.id, None);
        }
    }
}
