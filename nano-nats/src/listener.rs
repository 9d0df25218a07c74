//! [`NatsListener`]: the server side, services of a set subscribed in queue groups.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::{HeaderMap, Message, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use nano::{Api, Cancellation, Ctx, NanoError, ServiceSet, codes};
use nano_server::{CallerClients, CancelOnDrop, Listener, Shutdown};
use nano_wire::nats::{self, Reply};
use nano_wire::{DEFAULT_BODY_LIMIT, Endpoint};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::protocol::{CallHeaders, ERROR_NAME};
use crate::transport::NatsTransport;

/// The default time requests in flight may take to finish after shutdown was requested.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// The default number of requests handled at once; past it, the listener reads no more
/// messages until one finishes.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// The caller name used for requests that do not carry one.
pub const DEFAULT_CALLER: &str = "nats";

/// A [`Listener`] that serves chosen services of a set over NATS request-reply.
///
/// Each request type of an exposed service is a subscription to `<prefix>.<service>.<wire
/// name>` in the queue group `<prefix>.<service>`, so any number of processes can serve a service
/// and the broker hands each request to one of them. A request goes: protocol headers (request
/// id, caller, deadline; invalid ones are `C-BAD-REQUEST`) → payload limit
/// (`C-PAYLOAD-TOO-LARGE`) → JSON decoding through the request type (`C-BAD-REQUEST`) →
/// `set.client(caller, service)` with a root `Ctx` → the response JSON, or `{"code","msg"}`
/// with the header `Nano-Error: true`. A reply larger than the broker's `max_payload` is
/// replaced by an `S-ERROR` reply saying so.
///
/// A request whose service answers without waiting (a handler that computes its answer, or
/// calls in-process services that do) is handled by the subscription's reader itself, with no
/// task of its own; one that waits goes on in its own task, and the reader reads the next. So a
/// handler that computes for long without awaiting holds up the next requests of its request
/// type in this process, as it holds up its worker thread anyway: move such work to
/// `tokio::task::spawn_blocking`. At most [`max_in_flight`](NatsListener::max_in_flight)
/// requests are handled at once; past that, the readers wait for one to finish.
///
/// On shutdown the subscriptions are drained (the broker sends them nothing more, and what it
/// had sent is still handled), requests in flight finish within the grace period, and then any
/// still running are cancelled and answered `S-UNAVAILABLE`.
///
/// Made by [`NatsTransport::listener`].
pub struct NatsListener {
    transport: NatsTransport,
    apis: Vec<&'static Api>,
    body_limit: usize,
    grace_period: Duration,
    default_caller: String,
    max_in_flight: usize,
    /// Subscriptions made ahead of serving by [`subscribe`](NatsListener::subscribe), by
    /// subject.
    subscribed: Vec<(String, Subscriber)>,
}

/// One subscribed request type and where its requests go.
struct Route {
    service: Arc<str>,
    endpoint: Endpoint,
    callers: Arc<CallerClients>,
}

/// What every request handler of a listener shares.
struct Shared {
    nats: async_nats::Client,
    body_limit: usize,
    default_caller: String,
    /// Set at the end of the grace period: running calls are cut off.
    cut_off: AtomicBool,
    /// Wakes the calls waiting when `cut_off` is set.
    cut_off_now: Notify,
    in_flight: Arc<InFlight>,
}

impl NatsListener {
    pub(crate) fn new(transport: NatsTransport) -> Self {
        NatsListener {
            transport,
            apis: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            grace_period: DEFAULT_GRACE_PERIOD,
            default_caller: DEFAULT_CALLER.to_owned(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            subscribed: Vec::new(),
        }
    }

    /// Subscribes every request type of the services exposed so far now, before serving: from
    /// the moment this returns the broker sends their requests to this process, where they wait
    /// until [`listen`](Listener::listen) handles them. A server calls it before it says it is
    /// ready, as it binds an HTTP listener before; without it, `listen` subscribes.
    ///
    /// ```no_run
    /// # async fn run(api: &'static nano::Api) -> Result<(), nano::NanoError> {
    /// let nats = nano_nats::NatsTransport::connect("nats://127.0.0.1:4222").await?;
    /// let listener = nats.listener().expose_api(api)?.subscribe().await?;
    /// eprintln!("ready"); // requests sent from now on are served once the listener runs
    /// # drop(listener); Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// `S-UNAVAILABLE` when the broker cannot be reached or does not confirm the
    /// subscriptions.
    pub async fn subscribe(mut self) -> Result<Self, NanoError> {
        let client = self.transport.nats.clone();
        for api in &self.apis {
            let group = nats::queue_group(&self.transport.prefix, api.name());
            for endpoint in nats::endpoints(api)? {
                let subject = nats::subject(
                    &self.transport.prefix,
                    api.name(),
                    endpoint.request_type().name(),
                );
                if self.subscribed.iter().any(|(held, _)| *held == subject) {
                    continue;
                }
                let subscriber = queue_subscribe(&client, &subject, &group).await?;
                self.subscribed.push((subject, subscriber));
            }
        }
        confirm_subscriptions(&client).await?;
        Ok(self)
    }

    /// Serves the service of a declared API, every request type it declares; when serving
    /// starts, the set's service of that name must declare the same API.
    ///
    /// # Errors
    ///
    /// `S-DUPLICATE-SERVICE` when the service is already exposed; `S-INIT-FAILED` when its name
    /// or a wire name cannot be part of a subject.
    pub fn expose_api(mut self, api: &'static Api) -> Result<Self, NanoError> {
        if self.apis.iter().any(|held| held.name() == api.name()) {
            return Err(NanoError::new(
                codes::DUPLICATE_SERVICE,
                format!("service {:?} is already exposed", api.name()),
            ));
        }
        nats::endpoints(api)?;
        self.apis.push(api);
        Ok(self)
    }

    /// Sets the largest request payload accepted (default [`DEFAULT_BODY_LIMIT`], as over
    /// HTTP); larger ones are answered `C-PAYLOAD-TOO-LARGE`. The broker's `max_payload` bounds
    /// what can arrive at all.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Sets how long requests in flight may take to finish after shutdown was requested (default
    /// [`DEFAULT_GRACE_PERIOD`]).
    #[must_use]
    pub fn grace_period(mut self, grace_period: Duration) -> Self {
        self.grace_period = grace_period;
        self
    }

    /// Sets how many requests are handled at once (default [`DEFAULT_MAX_IN_FLIGHT`], at least
    /// 1).
    #[must_use]
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests.max(1);
        self
    }

    /// Sets the caller name used for requests without `Nano-Client-Name` (default
    /// [`DEFAULT_CALLER`]).
    #[must_use]
    pub fn default_caller(mut self, caller: impl Into<String>) -> Self {
        self.default_caller = caller.into();
        self
    }

    /// The routes of every exposed request type, checked against the set.
    fn routes(&self, set: &ServiceSet) -> Result<Vec<(String, Arc<Route>)>, NanoError> {
        let mut routes = Vec::new();
        for api in &self.apis {
            let service = api.name();
            match set.api(service) {
                _ if !set.contains(service) => {
                    return Err(NanoError::new(
                        codes::UNKNOWN_SERVICE,
                        format!(
                            "the NATS listener exposes service {service:?}, which is not in the set"
                        ),
                    ));
                }
                Some(held) if std::ptr::eq(held, *api) => {}
                _ => {
                    return Err(NanoError::new(
                        codes::INIT_FAILED,
                        format!(
                            "the NATS listener exposes an API of service {service:?} other than the one its service in the set declares"
                        ),
                    ));
                }
            }
            let callers = Arc::new(CallerClients::new(set, service, &self.default_caller)?);
            let name: Arc<str> = Arc::from(service);
            for endpoint in nats::endpoints(api)? {
                routes.push((
                    nats::subject(
                        &self.transport.prefix,
                        service,
                        endpoint.request_type().name(),
                    ),
                    Arc::new(Route {
                        service: Arc::clone(&name),
                        endpoint,
                        callers: Arc::clone(&callers),
                    }),
                ));
            }
        }
        Ok(routes)
    }
}

impl fmt::Debug for NatsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let services: Vec<&str> = self.apis.iter().map(|api| api.name()).collect();
        f.debug_struct("NatsListener")
            .field("transport", &self.transport)
            .field("services", &services)
            .field("body_limit", &self.body_limit)
            .field("grace_period", &self.grace_period)
            .field("default_caller", &self.default_caller)
            .field("max_in_flight", &self.max_in_flight)
            .field("subscribed", &self.subscribed.len())
            .finish()
    }
}

impl Listener for NatsListener {
    async fn listen(mut self, set: ServiceSet, shutdown: Shutdown) -> Result<(), NanoError> {
        let routes = self.routes(&set)?;
        let nats = self.transport.nats.clone();
        let mut subscribed = std::mem::take(&mut self.subscribed);
        let mut subscriptions = Vec::with_capacity(routes.len());
        for (subject, route) in routes {
            let subscriber = match subscribed.iter().position(|(held, _)| *held == subject) {
                Some(found) => subscribed.swap_remove(found).1,
                None => {
                    let group = nats::queue_group(&self.transport.prefix, &route.service);
                    queue_subscribe(&nats, &subject, &group).await?
                }
            };
            subscriptions.push((subscriber, route));
        }
        // From the broker's confirmation on, requests reach this process.
        confirm_subscriptions(&nats).await?;
        tracing::info!(
            target: "nano_nats",
            subjects = subscriptions.len(),
            url = ?self.transport.url(),
            "serving over NATS"
        );

        let shared = Arc::new(Shared {
            nats: nats.clone(),
            body_limit: self.body_limit,
            default_caller: self.default_caller,
            cut_off: AtomicBool::new(false),
            cut_off_now: Notify::new(),
            in_flight: Arc::new(InFlight::new(self.max_in_flight)),
        });
        let handlers = TaskTracker::new();
        let mut readers = tokio::task::JoinSet::new();
        for (subscriber, route) in subscriptions {
            readers.spawn(read(
                subscriber,
                route,
                Arc::clone(&shared),
                handlers.clone(),
                shutdown.clone(),
                self.grace_period,
            ));
        }
        let mut failure = None;
        while let Some(ended) = readers.join_next().await {
            match ended {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    failure.get_or_insert(err);
                    // One subscription lost means the service is not fully served: stop them all.
                    readers.abort_all();
                }
                Err(err) if err.is_cancelled() => {}
                Err(err) => {
                    failure.get_or_insert(NanoError::internal(format!(
                        "a NATS subscription reader failed: {err}"
                    )));
                }
            }
        }

        // Every subscription is drained: what is left is the requests in flight.
        handlers.close();
        if tokio::time::timeout(self.grace_period, handlers.wait())
            .await
            .is_err()
        {
            tracing::warn!(target: "nano_nats", "cutting off requests still running after the grace period");
            shared.cut_off.store(true, Ordering::SeqCst);
            shared.cut_off_now.notify_waiters();
            let _ = tokio::time::timeout(Duration::from_secs(1), handlers.wait()).await;
        }
        // Replies are written by the connection's own task; wait until the broker has them.
        let _ = tokio::time::timeout(Duration::from_secs(1), nats.flush()).await;
        match failure {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// A subscription to `subject` in the queue group `group`.
async fn queue_subscribe(
    client: &async_nats::Client,
    subject: &str,
    group: &str,
) -> Result<Subscriber, NanoError> {
    client
        .queue_subscribe(subject.to_owned(), group.to_owned())
        .await
        .map_err(|err| {
            NanoError::wrap(err, format!("cannot subscribe to {subject}"))
                .with_code(codes::UNAVAILABLE)
        })
}

/// How long the broker may take to confirm the subscriptions.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until the broker has processed every subscription this connection made before: from
/// then on, requests anyone publishes reach this process. The broker handles a connection's
/// messages in order, so a message this connection sends to itself comes back only after the
/// subscriptions before it took effect. (async-nats' `flush` only writes the socket, and the
/// client has no public ping.)
async fn confirm_subscriptions(client: &async_nats::Client) -> Result<(), NanoError> {
    let unavailable = |err: &dyn fmt::Display| {
        NanoError::unavailable(format!("cannot reach the NATS broker: {err}"))
    };
    let inbox = client.new_inbox();
    let mut probe = client
        .subscribe(inbox.clone())
        .await
        .map_err(|err| unavailable(&err))?;
    client
        .publish(inbox, Bytes::new())
        .await
        .map_err(|err| unavailable(&err))?;
    match tokio::time::timeout(CONFIRM_TIMEOUT, probe.next()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(unavailable(&"the connection closed")),
        Err(_elapsed) => Err(unavailable(&format_args!(
            "it did not confirm the subscriptions within {CONFIRM_TIMEOUT:?}"
        ))),
    }
}

/// Reads one subscription until it is drained after shutdown, handing each request to its own
/// task.
async fn read(
    mut subscriber: Subscriber,
    route: Arc<Route>,
    shared: Arc<Shared>,
    handlers: TaskTracker,
    shutdown: Shutdown,
    grace_period: Duration,
) -> Result<(), NanoError> {
    let requested = shutdown.requested();
    tokio::pin!(requested);
    let mut draining = None;
    loop {
        let message = match draining {
            None => tokio::select! {
                message = subscriber.next() => message,
                () = &mut requested => {
                    // The broker stops sending to this subscription; what it already sent still
                    // arrives, then the stream ends.
                    if let Err(err) = subscriber.drain().await {
                        tracing::warn!(target: "nano_nats", %err, "cannot drain a subscription");
                        return Ok(());
                    }
                    draining = Some(Instant::now() + grace_period);
                    continue;
                }
            },
            // A drain the broker never confirms (the connection is down) ends with the grace
            // period.
            Some(until) => match tokio::time::timeout_at(until, subscriber.next()).await {
                Ok(message) => message,
                Err(_elapsed) => return Ok(()),
            },
        };
        let Some(message) = message else {
            if draining.is_some() || shutdown.is_requested() {
                return Ok(());
            }
            return Err(NanoError::unavailable(
                "the connection to the NATS broker closed",
            ));
        };
        let slot = InFlight::enter(&shared.in_flight).await;
        let (route, shared) = (Arc::clone(&route), Arc::clone(&shared));
        let mut handler = Box::pin(async move {
            answer(&shared, &route, message).await;
            drop(slot);
        });
        // A request whose service answers without waiting (the usual case for a handler that
        // computes its answer) is done in its first poll, here; one that waits goes on in a task
        // of its own, so it holds up nothing. Moving it is sound: every future wakes the waker of
        // its latest poll, which is then the task's. Done here, it also needs no wake-up of
        // another worker thread and no task of its own.
        if futures_util::FutureExt::now_or_never(&mut handler).is_none() {
            handlers.spawn(handler);
        }
    }
}

/// The count of requests being handled, and the wait for a free slot at the limit. Atomics
/// rather than a semaphore, whose release takes a lock on every request; only a reader at the
/// limit waits, on a `Notify`.
struct InFlight {
    count: AtomicUsize,
    max: usize,
    freed: Notify,
}

impl InFlight {
    fn new(max: usize) -> Self {
        InFlight {
            count: AtomicUsize::new(0),
            max,
            freed: Notify::new(),
        }
    }

    /// Takes a slot, waiting until one is free.
    async fn enter(in_flight: &Arc<InFlight>) -> InFlightSlot {
        loop {
            // Made before the count is read: it sees every release from then on.
            let freed = in_flight.freed.notified();
            let count = in_flight.count.load(Ordering::Acquire);
            if count < in_flight.max {
                if in_flight
                    .count
                    .compare_exchange(count, count + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return InFlightSlot(Arc::clone(in_flight));
                }
                continue;
            }
            freed.await;
        }
    }
}

/// One request's slot, given back when dropped.
struct InFlightSlot(Arc<InFlight>);

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == self.0.max {
            self.0.freed.notify_waiters();
        }
    }
}

/// Handles one request and publishes its reply.
async fn answer(shared: &Shared, route: &Route, message: Message) {
    let Message {
        subject,
        reply,
        headers: request_headers,
        payload: request_payload,
        ..
    } = message;
    let Some(reply) = reply else {
        // Nobody waits for an answer to a plain publish, and a service call always has one.
        tracing::debug!(target: "nano_nats", subject = ?subject.as_str(), "ignored a message without a reply subject");
        return;
    };
    let outcome = handle(shared, route, request_headers.as_ref(), &request_payload).await;
    // The reply as the wire decides it, an oversized one replaced by an error saying so.
    let published = match nats::reply(&route.service, outcome, shared.nats.max_payload()) {
        Reply::Response(payload) => shared.nats.publish(reply, Bytes::from(payload)).await,
        Reply::Error(payload) => {
            let mut headers = HeaderMap::new();
            headers.insert(ERROR_NAME.clone(), "true");
            shared
                .nats
                .publish_with_headers(reply, headers, Bytes::from(payload))
                .await
        }
    };
    if let Err(err) = published {
        tracing::warn!(target: "nano_nats", %err, service = ?&*route.service, "cannot publish a reply");
    }
}

/// Decodes the request, calls the service and encodes the response.
async fn handle(
    shared: &Shared,
    route: &Route,
    headers: Option<&HeaderMap>,
    payload: &[u8],
) -> Result<Vec<u8>, NanoError> {
    let call = CallHeaders::parse(headers)?;
    nano_wire::check_body_len(payload.len(), shared.body_limit)?;
    let request = nano_wire::decode_body(&route.endpoint, payload)?;
    let caller = call.caller.unwrap_or(shared.default_caller.as_str());
    let client = route.callers.client(caller)?;
    // The request's own cancellation, fired when it is cut off (and its handler dropped), so
    // that work it spawned stops too.
    let cancellation = Cancellation::new();
    let mut ctx = Ctx::with_request_id(call.request_id).with_cancellation(cancellation.clone());
    if let Some(deadline) = call
        .budget
        .and_then(|budget| Instant::now().checked_add(budget))
    {
        ctx = ctx.with_deadline(deadline);
    }
    let guard = CancelOnDrop::new(Some(cancellation));
    let cut_off = || NanoError::unavailable("the server shut down before the request finished");
    // Made before the flag is read, so it sees every notification from then on; it costs
    // nothing (no lock) unless the call has to wait.
    let cut_off_now = shared.cut_off_now.notified();
    if shared.cut_off.load(Ordering::SeqCst) {
        return Err(cut_off());
    }
    let outcome = tokio::select! {
        biased;
        outcome = client.call_any(&ctx, request) => outcome,
        // The caller learns that the server went away; dropping the handler cancels the
        // request's context.
        () = cut_off_now => return Err(cut_off()),
    };
    guard.disarm();
    let response = outcome?;
    Ok(nano_wire::encode_response(&route.endpoint, &response)?.unwrap_or_default())
}
