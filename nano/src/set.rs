//! [`ServiceSet`]: services composed into a test, a server or a client program.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::client::Client;
use crate::ctx::{Ctx, Edge};
use crate::error::{NanoError, codes};
use crate::message::AnyRequest;
use crate::service::{BoxFuture, DynService, Outcome, Service, SharedService};

/// Wraps every client a [`ServiceSet`] hands out.
///
/// This is how the test toolkit puts a simulated transport, a recorder or a fault injector
/// between caller and callee without either knowing. A hook is given the edge (caller → callee)
/// and the next service in line, and returns the service the client will call instead.
///
/// Closures `Fn(&Edge, SharedService) -> SharedService` are hooks.
///
/// ```
/// use nano::{Edge, ServiceSet, SharedService};
///
/// let set = ServiceSet::builder()
///     .hook(|edge: &Edge, next: SharedService| {
///         println!("client for {edge}");
///         next
///     })
///     .build()?;
/// # Ok::<(), nano::NanoError>(())
/// ```
pub trait ClientHook: Send + Sync + 'static {
    /// Returns the service that calls along `edge` will reach; `next` leads to the callee.
    fn wrap(&self, edge: &Edge, next: SharedService) -> SharedService;
}

impl<F> ClientHook for F
where
    F: Fn(&Edge, SharedService) -> SharedService + Send + Sync + 'static,
{
    fn wrap(&self, edge: &Edge, next: SharedService) -> SharedService {
        self(edge, next)
    }
}

/// Where a client finds its callee. Clients are made during `init`, before the callee is
/// initialised, so the slot is filled once the whole set is built.
type Slot = Arc<OnceLock<SharedService>>;

/// Forwards to the service in a slot; the end of every client's hook chain.
struct SlotService {
    name: String,
    slot: Slot,
}

impl DynService for SlotService {
    fn name(&self) -> &str {
        &self.name
    }
    fn init(&mut self, _deps: &mut Dependencies<'_>) -> Result<(), NanoError> {
        Ok(())
    }
    fn init_finished(&self) -> Result<(), NanoError> {
        Ok(())
    }
    fn handle(&self, ctx: Ctx, req: AnyRequest) -> BoxFuture<'_, Outcome> {
        match self.slot.get() {
            Some(service) => service.handle(ctx, req),
            None => {
                let name = self.name.clone();
                Box::pin(async move {
                    Err(NanoError::internal(format!(
                        "service {name:?} was called before its set finished initialising"
                    )))
                })
            }
        }
    }
}

/// Builds a [`ServiceSet`]; see [`ServiceSet::builder`].
#[derive(Default)]
pub struct ServiceSetBuilder {
    services: Vec<Box<dyn DynService>>,
    hooks: Vec<Arc<dyn ClientHook>>,
}

impl ServiceSetBuilder {
    /// Adds a service; its init phases run in [`build`](ServiceSetBuilder::build).
    #[must_use]
    pub fn service(mut self, service: impl Service) -> Self {
        self.services.push(Box::new(service));
        self
    }

    /// Adds an already erased service (its init phases do not run).
    #[must_use]
    pub fn shared(mut self, service: SharedService) -> Self {
        self.services.push(Box::new(service));
        self
    }

    /// Adds a hook that wraps every client the set hands out. Hooks added first are outermost:
    /// they see a call before hooks added later.
    #[must_use]
    pub fn hook(mut self, hook: impl ClientHook) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Runs every service's `init`, then every service's `init_finished`, in the order the
    /// services were added.
    ///
    /// # Errors
    ///
    /// - `S-DUPLICATE-SERVICE` when two services share a name;
    /// - `S-MISSING-DEPENDENCY` when a service asks for a client of a service not in the set;
    /// - the error of a failed `init` or `init_finished`, wrapped with the service's name.
    pub fn build(self) -> Result<ServiceSet, NanoError> {
        let ServiceSetBuilder {
            mut services,
            hooks,
        } = self;
        let mut core = SetCore {
            slots: HashMap::with_capacity(services.len()),
            hooks,
        };
        for service in &services {
            let name = service.name().to_owned();
            if core.slots.contains_key(&name) {
                return Err(NanoError::new(
                    codes::DUPLICATE_SERVICE,
                    format!("two services in the set are named {name:?}"),
                ));
            }
            core.slots.insert(name, Arc::default());
        }

        for service in &mut services {
            let name = service.name().to_owned();
            let mut deps = Dependencies {
                caller: &name,
                core: &core,
            };
            service.init(&mut deps).map_err(|err| {
                NanoError::wrap(err, format!("init of service {name:?} failed"))
                    .with_code_if_empty(codes::INIT_FAILED)
            })?;
        }

        let mut order = Vec::with_capacity(services.len());
        for service in services {
            let shared = SharedService(Arc::from(service));
            let name = shared.name().to_owned();
            // The slot is fresh and filled exactly once here.
            let _ = core.slots[&name].set(shared);
            order.push(name);
        }

        for name in &order {
            core.service(name)
                .expect("slot filled above")
                .0
                .init_finished()
                .map_err(|err| {
                    NanoError::wrap(err, format!("init-finished of service {name:?} failed"))
                        .with_code_if_empty(codes::INIT_FAILED)
                })?;
        }

        Ok(ServiceSet {
            inner: Arc::new(SetInner { core, order }),
        })
    }
}

impl NanoError {
    fn with_code_if_empty(self, code: &'static str) -> Self {
        if self.code().is_empty() {
            self.with_code(code)
        } else {
            self
        }
    }
}

struct SetCore {
    slots: HashMap<String, Slot>,
    hooks: Vec<Arc<dyn ClientHook>>,
}

impl SetCore {
    fn service(&self, name: &str) -> Option<&SharedService> {
        self.slots.get(name).and_then(|slot| slot.get())
    }

    fn client(&self, caller: &str, callee: &str) -> Option<Client> {
        let slot = self.slots.get(callee)?;
        let edge = Edge::new(caller, callee);
        let mut target = SharedService(Arc::new(SlotService {
            name: callee.to_owned(),
            slot: Arc::clone(slot),
        }));
        for hook in self.hooks.iter().rev() {
            target = hook.wrap(&edge, target);
        }
        Some(Client::new(edge, target))
    }
}

/// What a service sees during [`Service::init`]: the clients it may resolve.
pub struct Dependencies<'a> {
    caller: &'a str,
    core: &'a SetCore,
}

impl Dependencies<'_> {
    /// The name of the service being initialised.
    pub fn service_name(&self) -> &str {
        self.caller
    }

    /// A client for calls from the service being initialised to `callee`.
    ///
    /// # Errors
    ///
    /// `S-MISSING-DEPENDENCY`, naming both services, when `callee` is not in the set.
    pub fn client(&mut self, callee: &str) -> Result<Client, NanoError> {
        self.core.client(self.caller, callee).ok_or_else(|| {
            NanoError::new(
                codes::MISSING_DEPENDENCY,
                format!(
                    "service {:?} depends on service {callee:?}, which is not in the set",
                    self.caller
                ),
            )
        })
    }
}

/// A set of initialised services that can be called through [`Client`]s.
///
/// The same set type holds the services of a test, of a server executable and of a client
/// program. Cloning is cheap; clones share the services.
///
/// ```
/// use nano::{Ctx, ServiceSet};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), nano::NanoError> {
/// let svc1 = nano::request_fn("svc1", |_ctx, r: Req| async move {
///     Ok(Resp { value: format!("svc1_{}", r.param) })
/// });
/// let set = ServiceSet::builder().service(svc1).build()?;
/// let client = set.client("test", "svc1")?;
/// let resp = client.call(&Ctx::new(), Req { param: "x".into() }).await?;
/// assert_eq!(resp.value, "svc1_x");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServiceSet {
    inner: Arc<SetInner>,
}

struct SetInner {
    core: SetCore,
    order: Vec<String>,
}

impl ServiceSet {
    /// Starts building a set.
    pub fn builder() -> ServiceSetBuilder {
        ServiceSetBuilder::default()
    }

    /// A client for calls from `caller` (a service name, or e.g. `"test"`) to `callee`.
    ///
    /// # Errors
    ///
    /// `S-UNKNOWN-SERVICE` when `callee` is not in the set.
    pub fn client(&self, caller: &str, callee: &str) -> Result<Client, NanoError> {
        self.inner.core.client(caller, callee).ok_or_else(|| {
            NanoError::new(
                codes::UNKNOWN_SERVICE,
                format!(
                    "{caller:?} asked for a client of service {callee:?}, which is not in the set"
                ),
            )
        })
    }

    /// The service named `name`, without any client or hook in front of it.
    pub fn service(&self, name: &str) -> Option<&SharedService> {
        self.inner.core.service(name)
    }

    /// Whether a service named `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        self.inner.core.slots.contains_key(name)
    }

    /// The names of the services, in the order they were added.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.order.iter().map(String::as_str)
    }
}

impl fmt::Debug for ServiceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceSet")
            .field("services", &self.inner.order)
            .field("hooks", &self.inner.core.hooks.len())
            .finish()
    }
}

impl DynService for SharedService {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn init(&mut self, _deps: &mut Dependencies<'_>) -> Result<(), NanoError> {
        Ok(())
    }
    fn init_finished(&self) -> Result<(), NanoError> {
        Ok(())
    }
    fn handle(&self, ctx: Ctx, req: AnyRequest) -> BoxFuture<'_, Outcome> {
        self.0.handle(ctx, req)
    }
}
