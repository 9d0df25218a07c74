//! Services that crash and restart: what [`Network::restartable`] makes.
//!
//! A set constructs each service once, from a [`NewService`] whose constructor it consumes, so
//! a restart cannot go through the set. Instead the restartable service builds each instance in
//! a small set of its own, whose only member is the service and whose missing dependencies are
//! supplied (by the set's fallback) as forwarders to clients of the real set. The first build
//! learns which dependencies the service asks for and resolves them in the real set, so the real
//! set records them as usual and every call the service makes still passes the real set's hooks;
//! a restart builds a new instance the same way, against the same clients.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use nano::{
    AnyRequest, Api, Cancellation, Client, Ctx, NanoError, NewService, Outcome, Service,
    ServiceSet, SharedService, codes,
};
use tokio::time::Instant;

use super::network::Network;

/// The constructor of a restartable service.
type Make = Box<dyn Fn() -> NewService + Send + Sync>;

/// The dependencies a first instance asked for while its own set built it, each with the slot
/// its forwarder reads the real set's client from.
type Asked = Arc<Mutex<Vec<(String, Arc<OnceLock<Client>>)>>>;

/// One restartable service: how to build it, the clients it depends on, its current life.
pub(crate) struct Process {
    name: String,
    make: Make,
    /// The clients of the real set, by callee, that every instance is built against.
    dependencies: HashMap<String, Client>,
    life: Mutex<Life>,
}

/// The current instance of a restartable service.
struct Life {
    /// The running instance, or why the last restart failed.
    instance: Result<SharedService, NanoError>,
    /// Fired when this instance crashes, which ends every call in flight at it.
    crashed: Cancellation,
    /// Until when the service is down after a crash.
    down_until: Option<Instant>,
}

impl Process {
    fn life(&self) -> MutexGuard<'_, Life> {
        self.life
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Throws the current instance away, failing the calls in flight at it, and builds the next
    /// one, which calls reach once `down` has passed.
    pub(crate) fn crash(&self, down: Duration) {
        let next = build(&self.name, (self.make)(), &self.dependencies);
        let mut life = self.life();
        life.crashed.cancel();
        *life = Life {
            instance: next,
            crashed: Cancellation::new(),
            down_until: (!down.is_zero()).then(|| Instant::now() + down),
        };
    }

    /// The instance a call that arrives now reaches, with the signal of its crash.
    fn current(&self) -> Result<(SharedService, Cancellation), NanoError> {
        let life = self.life();
        if let Some(until) = life.down_until
            && Instant::now() < until
        {
            return Err(NanoError::unavailable(format!(
                "{} is down: it crashed and has not restarted yet",
                self.name
            )));
        }
        match &life.instance {
            Ok(instance) => Ok((instance.clone(), life.crashed.clone())),
            Err(err) => Err(NanoError::unavailable(format!(
                "{} crashed and could not restart: {err}",
                self.name
            ))),
        }
    }
}

/// Builds one instance of `service` in a set of its own, with `dependencies` supplied as
/// forwarders.
fn build(
    name: &str,
    service: NewService,
    dependencies: &HashMap<String, Client>,
) -> Result<SharedService, NanoError> {
    let known = dependencies.clone();
    let restarted = name.to_owned();
    let set = ServiceSet::builder()
        .service(service)
        .fallback(move |callee| match known.get(callee) {
            Some(client) => Ok(SharedService::new(Forward::to(callee, client.clone()))),
            None => Err(NanoError::new(
                codes::MISSING_DEPENDENCY,
                format!(
                    "{restarted} asked for a client of {callee} after a restart, which its first \
                     instance did not need"
                ),
            )),
        })
        .build()?;
    instance_of(&set, name)
}

fn instance_of(set: &ServiceSet, name: &str) -> Result<SharedService, NanoError> {
    set.service(name).cloned().ok_or_else(|| {
        NanoError::new(
            codes::INIT_FAILED,
            format!("the constructor of {name} built no service of that name"),
        )
    })
}

/// Stands in for a dependency inside an instance's own set: passes each call on to the real
/// set's client, so it goes through the real set's hooks.
struct Forward {
    callee: String,
    /// Filled once the real set resolved the dependency (right after the first build).
    client: Arc<OnceLock<Client>>,
}

impl Forward {
    fn to(callee: &str, client: Client) -> Forward {
        Forward {
            callee: callee.to_owned(),
            client: Arc::new(OnceLock::from(client)),
        }
    }
}

impl Service for Forward {
    fn name(&self) -> &str {
        &self.callee
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        match self.client.get() {
            Some(client) => client.call_any(&ctx, req).await,
            None => Err(NanoError::internal(format!(
                "{} was called before its set finished initialising",
                self.callee
            ))),
        }
    }
}

/// What a set runs in place of a restartable service: calls reach its current instance, and
/// end with `S-UNAVAILABLE` when that instance crashes under them.
struct Restartable {
    process: Arc<Process>,
    api: Option<&'static Api>,
}

impl Service for Restartable {
    fn name(&self) -> &str {
        &self.process.name
    }

    fn api(&self) -> Option<&'static Api> {
        self.api
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let (instance, crashed) = self.process.current()?;
        tokio::select! {
            biased;
            () = crashed.cancelled() => Err(NanoError::unavailable(format!(
                "{} crashed while handling the call",
                self.process.name
            ))),
            outcome = instance.handle(ctx, req) => outcome,
        }
    }
}

/// See [`Network::restartable`].
pub(crate) fn restartable(
    net: Network,
    make: impl Fn() -> NewService + Send + Sync + 'static,
) -> NewService {
    let first = make();
    let name = first.name().to_owned();
    NewService::construct(name.clone(), move |deps| {
        // The first instance asks for its dependencies while its own set builds; each gets a
        // forwarder now and the real set's client right after, resolved through `deps` so the
        // real set records the dependency.
        let asked: Asked = Arc::default();
        let set = ServiceSet::builder()
            .service(first)
            .fallback({
                let asked = Arc::clone(&asked);
                move |callee| {
                    let client = Arc::new(OnceLock::new());
                    asked
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .push((callee.to_owned(), Arc::clone(&client)));
                    Ok(SharedService::new(Forward {
                        callee: callee.to_owned(),
                        client,
                    }))
                }
            })
            .build()?;
        let asked = std::mem::take(&mut *asked.lock().unwrap_or_else(|p| p.into_inner()));
        let mut dependencies = HashMap::new();
        for (callee, slot) in asked {
            let client = deps.client(&callee)?;
            let _ = slot.set(client.clone());
            dependencies.insert(callee, client);
        }
        let instance = instance_of(&set, &name)?;
        let api = instance.api();
        let process = Arc::new(Process {
            name: name.clone(),
            make: Box::new(make),
            dependencies,
            life: Mutex::new(Life {
                instance: Ok(instance),
                crashed: Cancellation::new(),
                down_until: None,
            }),
        });
        net.register_restartable(&name, &process);
        Ok(Restartable { process, api })
    })
}
