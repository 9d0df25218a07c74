//! Building sets: init phases, dependency errors, duplicate names, lookup.

use std::sync::{Arc, Mutex};

use nano::{AnyRequest, Client, Ctx, Dependencies, NanoError, Outcome, Service, ServiceSet, codes};
use nano_test::service_fn;

use crate::{Probe, Seen};

type Log = Arc<Mutex<Vec<String>>>;

/// A service that logs its init phases and can be told to fail them.
struct Phased {
    name: &'static str,
    deps: Vec<&'static str>,
    log: Log,
    fail_init: bool,
    fail_init_finished: bool,
    clients: Vec<Client>,
}

impl Phased {
    fn new(name: &'static str, deps: &[&'static str], log: &Log) -> Self {
        Phased {
            name,
            deps: deps.to_vec(),
            log: Arc::clone(log),
            fail_init: false,
            fail_init_finished: false,
            clients: Vec::new(),
        }
    }
}

impl Service for Phased {
    fn name(&self) -> &str {
        self.name
    }

    fn init(&mut self, deps: &mut Dependencies<'_>) -> Result<(), NanoError> {
        self.log.lock().unwrap().push(format!("init {}", self.name));
        assert_eq!(deps.service_name(), self.name);
        for dep in &self.deps {
            self.clients.push(deps.client(dep)?);
        }
        if self.fail_init {
            return Err(NanoError::bad_request("config is wrong"));
        }
        Ok(())
    }

    fn init_finished(&self) -> Result<(), NanoError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("init_finished {}", self.name));
        if self.fail_init_finished {
            return Err(NanoError::msg("warm-up failed"));
        }
        Ok(())
    }

    async fn handle(&self, _ctx: Ctx, req: AnyRequest) -> Outcome {
        nano::dispatch!(req, { Probe => |_| Ok(Seen::default()) })
    }
}

#[test]
fn every_init_runs_before_any_init_finished() {
    let log = Log::default();
    ServiceSet::builder()
        .service(Phased::new("a", &["b"], &log))
        .service(Phased::new("b", &["a"], &log))
        .service(Phased::new("c", &[], &log))
        .build()
        .unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "init a",
            "init b",
            "init c",
            "init_finished a",
            "init_finished b",
            "init_finished c"
        ]
    );
}

#[test]
fn a_missing_dependency_names_both_services() {
    let log = Log::default();
    let err = ServiceSet::builder()
        .service(Phased::new("orders", &["billing"], &log))
        .build()
        .unwrap_err();
    assert_eq!(err.code(), codes::MISSING_DEPENDENCY);
    assert_eq!(
        err.to_string(),
        "init of service \"orders\" failed :: service \"orders\" depends on service \"billing\", \
         which is not in the set"
    );
}

#[test]
fn duplicate_names_are_a_build_error() {
    let log = Log::default();
    let err = ServiceSet::builder()
        .service(Phased::new("a", &[], &log))
        .service(Phased::new("a", &[], &log))
        .build()
        .unwrap_err();
    assert_eq!(err.code(), codes::DUPLICATE_SERVICE);
    assert!(err.to_string().contains("\"a\""), "{err}");
    assert!(log.lock().unwrap().is_empty(), "no init may run");
}

#[test]
fn init_errors_keep_their_code_and_name_the_service() {
    let log = Log::default();
    let mut broken = Phased::new("broken", &[], &log);
    broken.fail_init = true;
    let err = ServiceSet::builder().service(broken).build().unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST);
    assert_eq!(
        err.to_string(),
        "init of service \"broken\" failed :: config is wrong"
    );
}

#[test]
fn init_finished_errors_are_coded_and_name_the_service() {
    let log = Log::default();
    let mut broken = Phased::new("broken", &[], &log);
    broken.fail_init_finished = true;
    let err = ServiceSet::builder()
        .service(Phased::new("fine", &[], &log))
        .service(broken)
        .build()
        .unwrap_err();
    assert_eq!(err.code(), codes::INIT_FAILED);
    assert_eq!(
        err.to_string(),
        "init-finished of service \"broken\" failed :: warm-up failed"
    );
}

#[tokio::test]
async fn lookup_by_name_and_unknown_services() {
    let set = ServiceSet::builder()
        .service(service_fn("x", |_ctx, req| async move {
            nano::dispatch!(req, { Probe => |_| Ok(Seen::default()) })
        }))
        .build()
        .unwrap();
    assert!(set.contains("x"));
    assert_eq!(set.service("x").unwrap().name(), "x");
    assert!(set.service("y").is_none());
    assert_eq!(set.names().collect::<Vec<_>>(), ["x"]);
    let err = set.client("test", "y").unwrap_err();
    assert_eq!(err.code(), codes::UNKNOWN_SERVICE);
    assert!(err.to_string().contains("\"y\""), "{err}");
}
