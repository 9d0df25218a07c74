//! `serve`: listeners run concurrently and shut down gracefully.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nano::{Ctx, NanoError, ServiceSet, codes};
use nano_server::{Listener, Shutdown, serve_until};
use nano_test::request_fn;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Probe {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Seen {}

impl nano::Request for Probe {
    type Response = Seen;
    const NAME: &'static str = "test.Probe";
}

/// A listener that "accepts" one request, waits for shutdown, then finishes the in-flight request.
struct FakeListener {
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl Listener for FakeListener {
    async fn listen(self, set: ServiceSet, shutdown: Shutdown) -> Result<(), NanoError> {
        let client = set.client("fake-listener", "svc")?;
        let in_flight = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            client.call(&Ctx::new(), Probe {}).await
        });
        shutdown.requested().await;
        self.log.lock().unwrap().push("stopped accepting");
        in_flight.await.unwrap()?;
        self.log.lock().unwrap().push("in-flight request finished");
        Ok(())
    }
}

struct FailingListener;

impl Listener for FailingListener {
    async fn listen(self, _set: ServiceSet, _shutdown: Shutdown) -> Result<(), NanoError> {
        Err(NanoError::unavailable("address already in use"))
    }
}

fn set() -> ServiceSet {
    ServiceSet::builder()
        .service(request_fn("svc", |_ctx, _p: Probe| async move {
            Ok(Seen::default())
        }))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_in_flight_work_finish() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let listeners = vec![
        FakeListener {
            log: Arc::clone(&log),
        }
        .boxed(),
        FakeListener {
            log: Arc::clone(&log),
        }
        .boxed(),
    ];
    serve_until(set(), listeners, std::future::ready(()))
        .await
        .unwrap();
    let log = log.lock().unwrap();
    assert_eq!(
        log.iter()
            .filter(|l| **l == "in-flight request finished")
            .count(),
        2
    );
    assert_eq!(log.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_failing_listener_stops_the_others_and_its_error_is_returned() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let listeners = vec![
        FakeListener {
            log: Arc::clone(&log),
        }
        .boxed(),
        FailingListener.boxed(),
    ];
    let err = serve_until(set(), listeners, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE);
    assert_eq!(
        *log.lock().unwrap(),
        ["stopped accepting", "in-flight request finished"]
    );
}
