//! [`CallerClients`]: the clients a listener calls one service through, one per caller.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use nano::{Client, NanoError, ServiceSet};

/// How many callers' clients are kept per service; past that, the client of a new caller is
/// made for each of its requests. Callers are service names, so a system has few; the bound is
/// for a peer that sends many names.
pub const MAX_KEPT_CALLERS: usize = 256;

/// The clients a listener calls one service of a set through, by the caller name a request
/// carries, each made once: making one looks the service up in the set, wraps it in the set's
/// hooks and finds the process's copy of the caller → callee edge under a global lock, which is
/// not worth doing for every request. The listener's default caller (for requests that name
/// none) has its client from the start; up to [`MAX_KEPT_CALLERS`] others are kept as they
/// come.
///
/// ```
/// # let set = nano::ServiceSet::builder().service(nano::NewService::construct("svc", |_| Ok(Svc))).build()?;
/// # struct Svc;
/// # impl nano::Service for Svc {
/// #     fn name(&self) -> &str { "svc" }
/// #     async fn handle(&self, _: nano::Ctx, _: nano::AnyRequest) -> nano::Outcome { Err(nano::NanoError::internal("x")) }
/// # }
/// let clients = nano_server::CallerClients::new(&set, "svc", "http")?;
/// assert_eq!(clients.client("http")?.caller(), "http");
/// assert_eq!(clients.client("svc2")?.caller(), "svc2");
/// # Ok::<(), nano::NanoError>(())
/// ```
#[derive(Debug)]
pub struct CallerClients {
    set: ServiceSet,
    service: String,
    default_caller: String,
    default: Client,
    kept: RwLock<HashMap<String, Client>>,
}

impl CallerClients {
    /// The clients of `service` in `set`, with the one of `default_caller` made now.
    ///
    /// # Errors
    ///
    /// What [`ServiceSet::client`] reports, e.g. `S-UNKNOWN-SERVICE`.
    pub fn new(set: &ServiceSet, service: &str, default_caller: &str) -> Result<Self, NanoError> {
        Ok(CallerClients {
            default: set.client(default_caller, service)?,
            set: set.clone(),
            service: service.to_owned(),
            default_caller: default_caller.to_owned(),
            kept: RwLock::new(HashMap::new()),
        })
    }

    /// The client calls from `caller` go through, as `set.client(caller, service)` makes it.
    ///
    /// # Errors
    ///
    /// What [`ServiceSet::client`] reports for a caller seen the first time.
    pub fn client(&self, caller: &str) -> Result<Cow<'_, Client>, NanoError> {
        if caller == self.default_caller {
            return Ok(Cow::Borrowed(&self.default));
        }
        let read = |kept: &HashMap<String, Client>| kept.get(caller).cloned();
        if let Some(client) = read(&self.kept.read().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(Cow::Owned(client));
        }
        let client = self.set.client(caller, &self.service)?;
        let mut kept = self.kept.write().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < MAX_KEPT_CALLERS {
            kept.entry(caller.to_owned())
                .or_insert_with(|| client.clone());
        }
        Ok(Cow::Owned(client))
    }
}
