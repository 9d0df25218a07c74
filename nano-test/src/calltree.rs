//! The call tree a request caused, recorded by a [`ClientHook`]: who called whom with what, and
//! what came back.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use nano::{AnyRequest, ClientHook, Ctx, Edge, NanoError, Outcome, Service, SharedService};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::deep::deep;
use crate::spec::{Mismatches, Spec, Target};

/// How a call ended, as it would cross a wire: a response body, or an error's code and flattened
/// message.
///
/// In JSON: `{"response": {...}}`, `{"error": {"code": "C-NOT-FOUND", "message": "..."}}`, or
/// `"unfinished"` for a call whose caller stopped waiting (deadline, cancellation) before it
/// ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// The call answered with this response body.
    Response(#[serde(deserialize_with = "crate::deep::bounded_value")] Value),
    /// The call failed.
    Error {
        /// The error code, empty for an uncoded error.
        code: String,
        /// The whole error chain as one message, as [`NanoError::flatten`] gives it.
        message: String,
    },
    /// The call had not ended when it was dropped.
    Unfinished,
}

impl CallOutcome {
    /// The outcome of a type-erased call.
    pub fn from_outcome(outcome: &Outcome) -> CallOutcome {
        match outcome {
            Ok(response) => match response.to_json_value() {
                Ok(body) => CallOutcome::Response(body),
                Err(err) => CallOutcome::from_error(&err),
            },
            Err(err) => CallOutcome::from_error(err),
        }
    }

    /// The outcome of a typed call.
    pub fn from_result<T: Serialize>(result: &Result<T, NanoError>) -> CallOutcome {
        match result {
            Ok(response) => match serde_json::to_value(response) {
                Ok(body) => CallOutcome::Response(body),
                Err(err) => CallOutcome::from_error(&NanoError::new(
                    nano::codes::ENCODE,
                    format!("cannot encode the response: {err}"),
                )),
            },
            Err(err) => CallOutcome::from_error(err),
        }
    }

    /// The outcome of a failed call: its code and its flattened message.
    pub fn from_error(err: &NanoError) -> CallOutcome {
        CallOutcome::Error {
            code: err.code().to_owned(),
            message: err.to_string(),
        }
    }

    /// The outcome as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| unreachable!("an outcome always encodes"))
    }

    /// Compares two outcomes of a call to `target` under `spec`: response bodies field by field,
    /// errors by their `{"code", "message"}` body, and a response against an error as a
    /// difference at `$`.
    ///
    /// # Errors
    ///
    /// Every difference, with a diff of both outcomes.
    pub fn compare(
        spec: &Spec,
        target: &Target,
        expected: &CallOutcome,
        actual: &CallOutcome,
    ) -> Result<(), Mismatches> {
        let (expected_body, actual_body) = (expected.body(), actual.body());
        let same_kind = std::mem::discriminant(expected) == std::mem::discriminant(actual);
        let outcome = |mismatches: Mismatches| {
            let diff = crate::spec::compare::text_diff(
                &crate::spec::compare::pretty(&expected.redacted(spec, target)),
                &crate::spec::compare::pretty(&actual.redacted(spec, target)),
            );
            Mismatches { diff, ..mismatches }
        };
        if same_kind {
            return spec
                .compare(target, &expected_body, &actual_body)
                .map_err(|m| outcome(m.about(expected.kind())));
        }
        Err(outcome(Mismatches {
            target: target.clone(),
            subject: "outcome".into(),
            mismatches: vec![crate::spec::Mismatch {
                path: "$".into(),
                kind: crate::spec::MismatchKind::Different,
                expected: Some(expected.to_value()),
                actual: Some(actual.to_value()),
            }],
            diff: String::new(),
        }))
    }

    /// The outcome with its body redacted by `spec` for `target`, as it goes into a snapshot.
    pub fn redacted(&self, spec: &Spec, target: &Target) -> Value {
        match self {
            CallOutcome::Response(body) => {
                serde_json::json!({ "response": spec.redact(target, body) })
            }
            CallOutcome::Error { .. } => {
                serde_json::json!({ "error": spec.redact(target, &self.body()) })
            }
            CallOutcome::Unfinished => self.to_value(),
        }
    }

    /// Whether the call answered with a response.
    pub fn is_response(&self) -> bool {
        matches!(self, CallOutcome::Response(_))
    }

    fn kind(&self) -> &'static str {
        match self {
            CallOutcome::Response(_) => "response",
            CallOutcome::Error { .. } => "error",
            CallOutcome::Unfinished => "outcome",
        }
    }

    /// The body rules apply to: the response, or `{"code", "message"}` of an error.
    fn body(&self) -> Value {
        match self {
            CallOutcome::Response(body) => body.clone(),
            CallOutcome::Error { code, message } => {
                serde_json::json!({ "code": code, "message": message })
            }
            CallOutcome::Unfinished => Value::Null,
        }
    }
}

/// One call of a call tree and the calls it caused, in the order they started.
///
/// A tree may be as deep as the call chain it records: cloning, comparing, printing,
/// (de)serializing and dropping it never overflow the stack, and a body nested deeper than the
/// HTTP transport accepts (128 levels) is refused when a tree is deserialized.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallNode {
    /// Who called: a service name, or the test's caller name.
    pub caller: String,
    /// The called service.
    pub service: String,
    /// The request's wire name.
    pub request: String,
    /// The request id of the tree; empty where ids are left out (scenario files).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// The request body as JSON.
    #[serde(deserialize_with = "crate::deep::bounded_value")]
    pub body: Value,
    /// How the call ended.
    pub outcome: CallOutcome,
    /// The calls this call caused.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "serialize_calls",
        deserialize_with = "deserialize_calls"
    )]
    pub calls: Vec<CallNode>,
}

fn serialize_calls<S: serde::Serializer>(
    calls: &[CallNode],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    deep(|| calls.serialize(serializer))
}

fn deserialize_calls<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<CallNode>, D::Error> {
    deep(|| Vec::<CallNode>::deserialize(deserializer))
}

impl Clone for CallNode {
    fn clone(&self) -> Self {
        deep(|| CallNode {
            caller: self.caller.clone(),
            service: self.service.clone(),
            request: self.request.clone(),
            request_id: self.request_id.clone(),
            body: self.body.clone(),
            outcome: self.outcome.clone(),
            calls: self.calls.clone(),
        })
    }
}

impl PartialEq for CallNode {
    fn eq(&self, other: &Self) -> bool {
        deep(|| {
            self.caller == other.caller
                && self.service == other.service
                && self.request == other.request
                && self.request_id == other.request_id
                && self.body == other.body
                && self.outcome == other.outcome
                && self.calls == other.calls
        })
    }
}

impl fmt::Debug for CallNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        deep(|| {
            f.debug_struct("CallNode")
                .field("caller", &self.caller)
                .field("service", &self.service)
                .field("request", &self.request)
                .field("request_id", &self.request_id)
                .field("body", &self.body)
                .field("outcome", &self.outcome)
                .field("calls", &self.calls)
                .finish()
        })
    }
}

impl Drop for CallNode {
    /// Drops the calls below this one from a heap stack: the derived drop would recurse once
    /// per level of the tree.
    fn drop(&mut self) {
        let mut below = std::mem::take(&mut self.calls);
        while let Some(mut node) = below.pop() {
            below.append(&mut node.calls);
        }
    }
}

impl CallNode {
    /// The target of this call, for spec rules and reports.
    pub fn target(&self) -> Target {
        Target::new(self.service.clone(), self.request.clone())
    }

    /// This node and all below it, depth first, parents before children.
    pub fn iter(&self) -> impl Iterator<Item = &CallNode> {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            let node = stack.pop()?;
            stack.extend(node.calls.iter().rev());
            Some(node)
        })
    }

    /// The tree as it goes into a snapshot, as JSON: request and response bodies redacted by
    /// `spec` (each with its own call's target), request ids replaced by `[req-1]`, `[req-2]`…
    /// in order of appearance, so the snapshot still shows which calls shared an id.
    pub fn redacted(&self, spec: &Spec) -> Value {
        serde_json::to_value(self.snapshot(spec, &mut HashMap::new()))
            .unwrap_or_else(|_| unreachable!("a redacted tree always encodes"))
    }

    /// The redacted tree with its fields in declaration order, for snapshots.
    pub(crate) fn snapshot(&self, spec: &Spec, ids: &mut HashMap<String, usize>) -> TreeSnapshot {
        let next = ids.len() + 1;
        let ordinal = *ids.entry(self.request_id.clone()).or_insert(next);
        let target = self.target();
        deep(|| TreeSnapshot {
            caller: self.caller.clone(),
            service: self.service.clone(),
            request: self.request.clone(),
            request_id: format!("[req-{ordinal}]"),
            body: spec.redact(&target, &self.body),
            outcome: self.outcome.redacted(spec, &target),
            calls: self
                .calls
                .iter()
                .map(|call| call.snapshot(spec, ids))
                .collect(),
        })
    }
}

/// A redacted [`CallNode`], serialised in a reading order (a JSON value would sort the keys).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TreeSnapshot {
    caller: String,
    service: String,
    request: String,
    request_id: String,
    body: Value,
    outcome: Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    calls: Vec<TreeSnapshot>,
}

/// How far the outline indents; deeper calls are indented as much and prefixed with their depth,
/// so printing a deep tree takes time and space linear in its size.
const MAX_INDENT: usize = 32;

impl fmt::Display for CallNode {
    /// An indented outline: `test -> svc2 svc2.Req {"param":"x"} => response {...}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut stack = vec![(self, 0usize)];
        while let Some((node, depth)) = stack.pop() {
            let indent = depth.min(MAX_INDENT) * 2;
            write!(f, "{:indent$}", "")?;
            if depth > MAX_INDENT {
                write!(f, "[{depth}] ")?;
            }
            write!(
                f,
                "{} -> {} {} {} => ",
                node.caller, node.service, node.request, node.body
            )?;
            match &node.outcome {
                CallOutcome::Response(body) => writeln!(f, "response {body}")?,
                CallOutcome::Error { code, message } => writeln!(f, "error {code} {message:?}")?,
                CallOutcome::Unfinished => writeln!(f, "unfinished")?,
            }
            stack.extend(node.calls.iter().rev().map(|call| (call, depth + 1)));
        }
        Ok(())
    }
}

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
    /// The call as a tree node without children.
    pub fn to_node(&self) -> CallNode {
        CallNode {
            caller: self.edge.caller().to_owned(),
            service: self.edge.callee().to_owned(),
            request: self.request.name().to_owned(),
            request_id: self.ctx.request_id().to_string(),
            body: self
                .request
                .to_json_value()
                .unwrap_or_else(|err| Value::String(format!("[cannot encode: {err}]"))),
            outcome: self
                .outcome
                .as_ref()
                .map_or(CallOutcome::Unfinished, CallOutcome::from_outcome),
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
/// use nano::{Ctx, ServiceSet};
/// use nano_test::CallRecorder;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), nano::NanoError> {
/// let recorder = CallRecorder::new();
/// let svc1 = nano_test::request_fn("svc1", |_ctx, r: Req| async move { Ok(Resp { value: r.param }) });
/// let set = ServiceSet::builder().service(svc1).hook(recorder.clone()).build()?;
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
    next_id: AtomicU64,
    records: Mutex<Vec<CallRecord>>,
}

impl CallRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        CallRecorder {
            inner: Arc::new(RecorderInner {
                key: NEXT_RECORDER_KEY.fetch_add(1, Ordering::Relaxed),
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
        Self::build_trees(&self.records())
    }

    fn build_trees(records: &[CallRecord]) -> Vec<CallNode> {
        let ids: std::collections::HashSet<u64> = records.iter().map(|r| r.id).collect();
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
        fn build(record: &CallRecord, children: &HashMap<u64, Vec<&CallRecord>>) -> CallNode {
            deep(|| {
                let mut node = record.to_node();
                node.calls = children
                    .get(&record.id)
                    .map(|kids| kids.iter().map(|kid| build(kid, children)).collect())
                    .unwrap_or_default();
                node
            })
        }
        roots
            .into_iter()
            .map(|root| build(root, &children))
            .collect()
    }

    /// Removes every root call that is over (answered, or abandoned by its caller) and the calls
    /// below it from the recorder, and returns them as trees. A long-running recorder (e.g. on a server) calls this after each request so
    /// that memory holds only requests in flight.
    pub fn take_finished_trees(&self) -> Vec<CallNode> {
        let mut records = self.lock();
        let ids: std::collections::HashSet<u64> = records.iter().map(|r| r.id).collect();
        let is_root = |r: &CallRecord| r.parent.is_none_or(|p| !ids.contains(&p));
        let mut taken: std::collections::HashSet<u64> = records
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
        Self::build_trees(&finished)
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
