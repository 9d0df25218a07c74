//! [`ServiceSet`]: services composed into a test, a server or a client program.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::api::Api;
use crate::client::Client;
use crate::ctx::Edge;
use crate::error::{NanoError, codes};
use crate::service::{Service, SharedService};

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

impl<F: Fn(&Edge, SharedService) -> SharedService + Send + Sync + 'static> ClientHook for F {
    fn wrap(&self, edge: &Edge, next: SharedService) -> SharedService {
        self(edge, next)
    }
}

/// A service to add to a set: a ready one (any [`Service`] converts into this), or one the set
/// constructs from the clients of its dependencies when it is built.
pub struct NewService {
    name: String,
    make: Construct,
    /// Already erased (see [`ServiceSetBuilder::shared`]): its init phases do not run.
    erased: bool,
}

type Construct =
    Box<dyn FnOnce(&mut Dependencies<'_>) -> Result<SharedService, NanoError> + Send + Sync>;

impl NewService {
    /// A service named `name` that the set builds by calling `construct` with the resolver of
    /// its dependencies, so the service can hold plain [`Client`] fields. The clients it asks
    /// for are the service's dependencies, as [`ServiceSet::dependencies`] reports them.
    ///
    /// ```
    /// use nano::{Client, NewService, ServiceSet};
    ///
    /// struct Front { back: Client }
    /// # impl nano::Service for Front {
    /// #     fn name(&self) -> &str { "front" }
    /// #     async fn handle(&self, ctx: nano::Ctx, req: nano::AnyRequest) -> nano::Outcome { self.back.call_any(&ctx, req).await }
    /// # }
    /// let back = nano_test::service_fn("back", |_ctx, req| async move { Err(nano::NanoError::bad_request_type(req.name())) });
    /// let set = ServiceSet::builder()
    ///     .service(NewService::construct("front", |deps| Ok(Front { back: deps.client("back")? })))
    ///     .service(back)
    ///     .build()?;
    /// assert_eq!(set.dependencies("front"), Some(&["back".to_owned()][..]));
    /// # Ok::<(), nano::NanoError>(())
    /// ```
    pub fn construct<S: Service>(
        name: impl Into<String>,
        construct: impl FnOnce(&mut Dependencies<'_>) -> Result<S, NanoError> + Send + Sync + 'static,
    ) -> Self {
        NewService {
            name: name.into(),
            make: Box::new(move |deps| {
                let mut service = construct(deps)?;
                service.init(deps)?;
                Ok(SharedService::new(service))
            }),
            erased: false,
        }
    }

    /// The name the service is added under.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<S: Service> From<S> for NewService {
    fn from(service: S) -> Self {
        NewService::construct(Service::name(&service).to_owned(), move |_| Ok(service))
    }
}

/// Supplies a stand-in for a dependency that is not in the set; see
/// [`ServiceSetBuilder::fallback`].
type Fallback = Box<dyn FnMut(&str) -> Result<SharedService, NanoError> + Send + Sync>;

/// Builds a [`ServiceSet`]; see [`ServiceSet::builder`].
#[derive(Default)]
pub struct ServiceSetBuilder {
    services: Vec<NewService>,
    hooks: Vec<Arc<dyn ClientHook>>,
    fallback: Option<Fallback>,
}

impl ServiceSetBuilder {
    /// Adds a service: a ready one, whose init phases run in
    /// [`build`](ServiceSetBuilder::build), or one to construct (see [`NewService::construct`]).
    #[must_use]
    pub fn service(mut self, service: impl Into<NewService>) -> Self {
        self.services.push(service.into());
        self
    }

    /// Adds an already erased service (its init phases do not run).
    #[must_use]
    pub fn shared(mut self, service: SharedService) -> Self {
        self.services.push(NewService {
            name: service.name().to_owned(),
            make: Box::new(move |_| Ok(service)),
            erased: true,
        });
        self
    }

    /// Adds a hook that wraps every client the set hands out. Hooks added first are outermost:
    /// they see a call before hooks added later.
    #[must_use]
    pub fn hook(mut self, hook: impl ClientHook) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Supplies the services the set's services depend on but the set does not hold: the first
    /// time a service asks for a client of a missing service, `fallback` is called with its name
    /// and the service it returns joins the set. This is how a server stands in for remote
    /// services with transport clients without a second list of who depends on whom.
    #[must_use]
    pub fn fallback(
        mut self,
        fallback: impl FnMut(&str) -> Result<SharedService, NanoError> + Send + Sync + 'static,
    ) -> Self {
        self.fallback = Some(Box::new(fallback));
        self
    }

    /// Constructs or initialises every service, in the order they were added, then runs every
    /// service's `init_finished`.
    ///
    /// # Errors
    ///
    /// - `S-DUPLICATE-SERVICE` when two services share a name;
    /// - `S-MISSING-DEPENDENCY` when a service asks for a client of a service not in the set
    ///   (and there is no [`fallback`](ServiceSetBuilder::fallback));
    /// - `S-INIT-FAILED` when a service's name or declared API does not match the name it was
    ///   added under;
    /// - the error of a failed construction, `init`, `init_finished` or fallback, wrapped with
    ///   the service's name.
    pub fn build(self) -> Result<ServiceSet, NanoError> {
        let mut set = SetInner {
            services: HashMap::with_capacity(self.services.len()),
            hooks: self.hooks,
            order: Vec::with_capacity(self.services.len()),
            fallback: self.fallback,
        };
        for service in &self.services {
            set.add(&service.name)?;
        }
        let mut made = Vec::with_capacity(self.services.len());
        for NewService { name, make, erased } in self.services {
            let service = set.make(&name, make);
            let service = service.map_err(|e| failed(e, "init", &name))?;
            set.services[&name].0.fill(&service)?;
            if !erased {
                made.push(service);
            }
        }
        for service in &made {
            let init_finished = service.ready()?.init_finished();
            init_finished.map_err(|e| failed(e, "init-finished", service.name()))?;
        }
        set.fallback = None;
        let inner = Arc::new(set);
        Ok(ServiceSet { inner })
    }
}

/// A failed build phase of service `name`, coded `S-INIT-FAILED` unless it has a code.
fn failed(err: NanoError, phase: &str, name: &str) -> NanoError {
    let err = NanoError::wrap(err, format!("{phase} of service {name:?} failed"));
    if err.code().is_empty() {
        err.with_code(codes::INIT_FAILED)
    } else {
        err
    }
}

/// What a service sees while the set builds it (in [`NewService::construct`] or
/// [`Service::init`]): the clients it may resolve.
pub struct Dependencies<'a> {
    caller: &'a str,
    set: &'a mut SetInner,
}

impl Dependencies<'_> {
    /// The name of the service being built.
    pub fn service_name(&self) -> &str {
        self.caller
    }

    /// A client for calls from the service being built to `callee`; `callee` becomes one of its
    /// [dependencies](ServiceSet::dependencies).
    ///
    /// # Errors
    ///
    /// `S-MISSING-DEPENDENCY`, naming both services, when `callee` is not in the set and no
    /// [fallback](ServiceSetBuilder::fallback) supplies it; the fallback's error otherwise.
    pub fn client(&mut self, callee: &str) -> Result<Client, NanoError> {
        self.set.client(self.caller, callee)
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
/// let svc1 = nano_test::request_fn("svc1", |_ctx, r: Req| async move {
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
    /// Every service's slot and the services it asked clients of.
    services: HashMap<String, (SharedService, Vec<String>)>,
    hooks: Vec<Arc<dyn ClientHook>>,
    /// The names, in the order the services were added (those the fallback supplied last).
    order: Vec<String>,
    /// Supplies missing dependencies while the set is built.
    fallback: Option<Fallback>,
}

impl SetInner {
    fn make(&mut self, name: &str, make: Construct) -> Result<SharedService, NanoError> {
        let (caller, set) = (name, self);
        let service = make(&mut Dependencies { caller, set })?;
        let declared = service.api().map_or(service.name(), |api| api.name());
        if service.name() != name || declared != name {
            let named = service.name();
            let message = format!(
                "service added as {name:?} is named {named:?} and declares the API of {declared:?}"
            );
            return Err(NanoError::new(codes::INIT_FAILED, message));
        }
        Ok(service)
    }

    fn client(&mut self, caller: &str, callee: &str) -> Result<Client, NanoError> {
        if !self.services.contains_key(callee) {
            let Some(fallback) = self.fallback.as_mut() else {
                let message = format!(
                    "service {caller:?} depends on service {callee:?}, which is not in the set"
                );
                return Err(NanoError::new(codes::MISSING_DEPENDENCY, message));
            };
            let service = fallback(callee)?;
            self.add(callee)?.fill(&service)?;
        }
        let (_, known) = self.services.get_mut(caller).expect("added");
        if !known.iter().any(|dep| dep == callee) {
            known.push(callee.to_owned());
        }
        Ok(self.wrap(caller, callee).expect("added above"))
    }

    /// Adds an empty slot for `name`.
    fn add(&mut self, name: &str) -> Result<&SharedService, NanoError> {
        if self.services.contains_key(name) {
            let message = format!("two services in the set are named {name:?}");
            return Err(NanoError::new(codes::DUPLICATE_SERVICE, message));
        }
        let slot = SharedService::slot(name);
        self.order.push(name.to_owned());
        let entry = self.services.entry(name.to_owned());
        Ok(&entry.or_insert((slot, Vec::new())).0)
    }

    /// A client of `callee`, wrapped by every hook.
    fn wrap(&self, caller: &str, callee: &str) -> Option<Client> {
        let (slot, _) = self.services.get(callee)?;
        let edge = Edge::new(caller, callee);
        let mut target = slot.clone();
        for hook in self.hooks.iter().rev() {
            target = hook.wrap(&edge, target);
        }
        let edge = edge.interned();
        Some(Client { edge, target })
    }
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
        self.inner.wrap(caller, callee).ok_or_else(|| {
            let message = format!(
                "{caller:?} asked for a client of service {callee:?}, which is not in the set"
            );
            NanoError::new(codes::UNKNOWN_SERVICE, message)
        })
    }

    /// The service named `name`, without any client or hook in front of it.
    pub fn service(&self, name: &str) -> Option<&SharedService> {
        let (slot, _) = self.inner.services.get(name)?;
        slot.ready().is_ok().then_some(slot)
    }

    /// The declared API of the service named `name`, if it has one.
    pub fn api(&self, name: &str) -> Option<&'static Api> {
        self.service(name)?.api()
    }

    /// Whether a service named `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        self.inner.services.contains_key(name)
    }

    /// The services `name` asked clients of while the set was built, in the order it asked; `None`
    /// when `name` is not in the set.
    pub fn dependencies(&self, name: &str) -> Option<&[String]> {
        let (_, dependencies) = self.inner.services.get(name)?;
        Some(dependencies)
    }

    /// The names of the services, in the order they were added (services a
    /// [fallback](ServiceSetBuilder::fallback) supplied come last).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.order.iter().map(String::as_str)
    }
}

impl fmt::Debug for ServiceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceSet")
            .field("services", &self.inner.order)
            .field("hooks", &self.inner.hooks.len())
            .finish()
    }
}
