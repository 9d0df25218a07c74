//! [`Ctx`]: what a handler knows about the request it is serving.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// The id of a request tree: generated once where a request enters the system and kept across
/// every hop (in-process or over a wire), so logs and recordings can be joined by it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// A fresh id: 16 random bytes as 32 lowercase hex characters, like the Go original.
    pub fn generate() -> Self {
        // Written digit by digit: formatting machinery costs more than the rest of a root context.
        let (bits, mut hex) = (fastrand::u128(..), [0; 32]);
        for (i, digit) in hex.iter_mut().enumerate() {
            *digit = b"0123456789abcdef"[(bits >> (124 - 4 * i) & 15) as usize];
        }
        RequestId(std::str::from_utf8(&hex).unwrap_or_default().into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for RequestId {
    fn from(id: &str) -> Self {
        RequestId(id.into())
    }
}

impl From<String> for RequestId {
    fn from(id: String) -> Self {
        RequestId(id.into())
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// One caller → callee direction: who a client calls on behalf of whom.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edge {
    caller: String,
    callee: String,
}

impl Edge {
    /// An edge from `caller` to `callee`.
    pub fn new(caller: impl Into<String>, callee: impl Into<String>) -> Self {
        let (caller, callee) = (caller.into(), callee.into());
        Edge { caller, callee }
    }

    /// The name of the calling service (or test, or listener).
    pub fn caller(&self) -> &str {
        &self.caller
    }

    /// The name of the called service.
    pub fn callee(&self) -> &str {
        &self.callee
    }

    /// The process's one copy of this edge. Clients hold their edge this way so that each call
    /// hands it to the callee's [`Ctx`] as a plain reference; a process keeps one copy of each
    /// distinct caller → callee pair it ever made a client for, up to 4,096. Past that, a new
    /// pair's caller is `[other caller]`: caller names come from peers (a listener makes a
    /// client for the name each request gives), and memory must not grow with what they send.
    pub(crate) fn interned(mut self) -> &'static Edge {
        static EDGES: Mutex<BTreeSet<&'static Edge>> = Mutex::new(BTreeSet::new());
        let mut edges = EDGES.lock().unwrap_or_else(PoisonError::into_inner);
        if edges.len() >= 4096 && !edges.contains(&self) {
            self.caller = "[other caller]".to_owned();
        }
        let edge = edges.get(&self).copied();
        let edge = edge.unwrap_or_else(|| Box::leak(Box::new(self)));
        edges.insert(edge);
        edge
    }
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.caller, self.callee)
    }
}

/// A flag that tells a request tree its caller gave up: tokio-util's `CancellationToken`.
///
/// Whoever starts a request (a listener, a test) keeps the `Cancellation` and calls `cancel`
/// when the client goes away; every [`Ctx`] derived from the root shares it, and
/// [`Client`](crate::Client) calls made under it end with `S-CANCELLED`.
pub use tokio_util::sync::CancellationToken as Cancellation;

/// The request context a handler receives: request id, caller, current service, deadline,
/// cancellation and string metadata.
///
/// A root context is made with [`Ctx::new`] where a request enters the system (a test, a
/// listener). Every [`Client`](crate::Client) call derives the callee's context from the caller's:
/// the request id, deadline, cancellation and metadata are kept, the caller and service names are
/// set. Cloning is cheap: one reference count for what the whole request tree shares.
#[derive(Clone, Debug)]
pub struct Ctx {
    tree: Arc<Tree>,
    edge: Option<&'static Edge>,
    deadline: Option<Instant>,
}

/// What the contexts of one request tree share; changed copy-on-write.
#[derive(Clone, Debug)]
struct Tree {
    request_id: RequestId,
    cancellation: Option<Cancellation>,
    metadata: BTreeMap<String, String>,
}

impl Ctx {
    /// A root context with a freshly generated request id and nothing else.
    pub fn new() -> Self {
        Self::with_request_id(RequestId::generate())
    }

    /// A root context that continues the request tree `id` (e.g. taken from a wire header).
    pub fn with_request_id(id: impl Into<RequestId>) -> Self {
        Ctx {
            tree: Arc::new(Tree {
                request_id: id.into(),
                cancellation: None,
                metadata: BTreeMap::new(),
            }),
            edge: None,
            deadline: None,
        }
    }

    /// The id shared by every call of this request tree.
    pub fn request_id(&self) -> &RequestId {
        &self.tree.request_id
    }

    /// The name of whoever called the current service; `None` in a root context.
    pub fn caller(&self) -> Option<&str> {
        self.edge.map(Edge::caller)
    }

    /// The name of the service this context was created for; `None` in a root context.
    pub fn service(&self) -> Option<&str> {
        self.edge.map(Edge::callee)
    }

    /// The caller → service edge of this context; `None` in a root context. Edges live as long
    /// as the process (see [`Client`](crate::Client)), so their names can be kept without a copy.
    pub fn edge(&self) -> Option<&'static Edge> {
        self.edge
    }

    /// The instant by which the whole request tree must be done, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left until the deadline (zero once it passed); `None` without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed.
    pub fn is_expired(&self) -> bool {
        self.remaining() == Some(Duration::ZERO)
    }

    /// Sets the deadline, keeping an earlier one: a callee never gets more time than its caller.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        self
    }

    /// Sets the deadline to now + `timeout`, keeping an earlier one. A timeout too long to
    /// represent as an instant sets no deadline.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.with_deadline(deadline),
            None => self,
        }
    }

    /// The cancellation flag of this request tree, if one was attached.
    pub fn cancellation(&self) -> Option<&Cancellation> {
        self.tree.cancellation.as_ref()
    }

    /// Attaches a cancellation flag that the whole request tree will share.
    #[must_use]
    pub fn with_cancellation(mut self, cancellation: Cancellation) -> Self {
        Arc::make_mut(&mut self.tree).cancellation = Some(cancellation);
        self
    }

    /// Whether the caller gave up on this request tree.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation().is_some_and(Cancellation::is_cancelled)
    }

    /// Completes when there is no point in going on: the request tree was cancelled or its
    /// deadline passed. Never completes for a context with neither.
    pub async fn done(&self) {
        let expired = async {
            match self.deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        match self.cancellation() {
            Some(cancellation) => _ = cancellation.run_until_cancelled(expired).await,
            None => expired.await,
        }
    }

    /// The metadata value for `key` (e.g. the authenticated user a listener set).
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.tree.metadata.get(key).map(String::as_str)
    }

    /// Every metadata entry, sorted by key.
    pub fn metadata_entries(&self) -> impl Iterator<Item = (&str, &str)> {
        let entries = self.tree.metadata.iter();
        entries.map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Adds or replaces one metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let metadata = &mut Arc::make_mut(&mut self.tree).metadata;
        metadata.insert(key.into(), value.into());
        self
    }

    /// Removes every metadata entry, keeping everything else.
    ///
    /// Transports (and the test toolkit's transport-fidelity hook) use it: metadata lives in the
    /// process and does not cross a wire unless a transport maps it to an explicit header.
    #[must_use]
    pub fn without_metadata(mut self) -> Self {
        if !self.tree.metadata.is_empty() {
            Arc::make_mut(&mut self.tree).metadata.clear();
        }
        self
    }

    /// The callee's context for a call along `edge`.
    #[inline]
    pub(crate) fn for_call(&self, edge: &'static Edge) -> Ctx {
        let mut ctx = self.clone();
        ctx.edge = Some(edge);
        ctx
    }
}

impl Default for Ctx {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_32_lowercase_hex_chars_and_differ() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_eq!(a.as_str().len(), 32);
        assert!(
            a.as_str()
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_ne!(a, b);
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_only_shrink() {
        let ctx = Ctx::new().with_timeout(Duration::from_secs(1));
        let later = ctx.clone().with_timeout(Duration::from_secs(5));
        assert_eq!(later.deadline(), ctx.deadline());
        let sooner = ctx.clone().with_timeout(Duration::from_millis(10));
        assert!(sooner.deadline() < ctx.deadline());
        tokio::time::advance(Duration::from_millis(10)).await;
        assert!(sooner.is_expired());
        assert!(!ctx.is_expired());
        assert_eq!(sooner.remaining(), Some(Duration::ZERO));
        assert_eq!(Ctx::new().with_timeout(Duration::MAX).deadline(), None);
    }

    #[tokio::test]
    async fn done_completes_on_cancel() {
        let cancellation = Cancellation::new();
        let ctx = Ctx::new().with_cancellation(cancellation.clone());
        let waiter = tokio::spawn(async move { ctx.done().await });
        tokio::task::yield_now().await;
        cancellation.cancel();
        waiter.await.unwrap();
        assert!(cancellation.is_cancelled());
    }

    #[test]
    fn metadata_is_copy_on_write() {
        let a = Ctx::new().with_metadata("user", "alice");
        let b = a.clone().with_metadata("user", "bob");
        assert_eq!(a.metadata("user"), Some("alice"));
        assert_eq!(b.metadata("user"), Some("bob"));
        assert_eq!(b.metadata_entries().collect::<Vec<_>>(), [("user", "bob")]);
    }

    #[test]
    fn without_metadata_keeps_the_rest() {
        let ctx = Ctx::with_request_id("abc")
            .with_metadata("user", "alice")
            .without_metadata();
        assert_eq!(ctx.metadata("user"), None);
        assert_eq!(ctx.metadata_entries().count(), 0);
        assert_eq!(ctx.request_id().as_str(), "abc");
    }
}
