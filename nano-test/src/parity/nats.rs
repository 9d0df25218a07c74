//! Deployments whose services are reached over a NATS broker.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use nano::{Api, NanoError, codes};
use nano_nats::NatsTransport;

use super::{Deployment, JsonCall, Wire};
use crate::CallOutcome;

/// The declaration of a service by name.
type Apis = dyn Fn(&str) -> Option<&'static Api> + Send + Sync;

impl Deployment {
    /// A deployment that is already running, reached over the NATS broker `transport` is
    /// connected to: `apis(name)` gives each service's declared API (e.g. `|name|
    /// system.api(name)`). Named `remote`; calls as `"test"`. Whichever replica the broker picks
    /// answers.
    ///
    /// ```no_run
    /// use nano_test::Deployment;
    /// use nano_test::scenario::{Registry, Scenario, replay_outcome};
    ///
    /// # async fn live() -> Result<(), Box<dyn std::error::Error>> {
    /// let system = services::system();
    /// let nats = nano_nats::NatsTransport::connect("nats://127.0.0.1:4222").await?;
    /// let cluster = Deployment::remote_nats(nats, move |name| system.api(name));
    /// let scenario = Scenario::load("scenarios/recorded/svc2-get.json")?;
    /// let registry = Registry::new().with_all(services::api::request_types());
    /// replay_outcome(&scenario, &registry, &cluster).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// A client of a service `apis` does not know is `S-UNKNOWN-SERVICE`.
    pub fn remote_nats(
        transport: NatsTransport,
        apis: impl Fn(&str) -> Option<&'static Api> + Send + Sync + 'static,
    ) -> Self {
        Deployment::over_nats("remote", transport, apis, ())
    }

    /// A deployment named `name` that reaches the services over `transport` and keeps `keep`
    /// (e.g. the processes serving them and their broker) alive as long as it or a clone of it
    /// lives.
    pub(crate) fn over_nats(
        name: impl Into<String>,
        transport: NatsTransport,
        apis: impl Fn(&str) -> Option<&'static Api> + Send + Sync + 'static,
        keep: impl Send + Sync + 'static,
    ) -> Self {
        let keep: Arc<dyn std::any::Any + Send + Sync> = Arc::new(keep);
        let wire = Arc::new(NatsWire {
            transport,
            apis: Arc::new(apis),
            _keep: Arc::clone(&keep),
        });
        let clients = Arc::clone(&wire);
        Deployment::through_clients(name, keep, move |service| clients.client(service))
            .with_wire(wire)
    }
}

/// Recorded requests over NATS, as the deployment's own clients send them.
struct NatsWire {
    transport: NatsTransport,
    apis: Arc<Apis>,
    _keep: Arc<dyn std::any::Any + Send + Sync>,
}

impl NatsWire {
    fn client(&self, service: &str) -> Result<nano_nats::NatsClient, NanoError> {
        let api = (self.apis)(service).ok_or_else(|| {
            NanoError::new(
                codes::UNKNOWN_SERVICE,
                format!("no API is declared for service {service:?}"),
            )
        })?;
        self.transport.api_client(api)
    }
}

impl Wire for NatsWire {
    fn refuses(&self, service: &str, request: &str) -> Option<String> {
        let api = (self.apis)(service)?;
        api.operation(request)
            .is_none()
            .then(|| super::undeclared_over_nats(service, request))
    }

    fn send_json(&self, call: JsonCall) -> BoxFuture<'static, CallOutcome> {
        let client = match self.client(&call.service) {
            Ok(client) => client,
            Err(err) => return Box::pin(std::future::ready(CallOutcome::from_error(&err))),
        };
        Box::pin(async move {
            match client
                .call_json(&call.ctx, Some(&call.caller), &call.request, &call.body)
                .await
            {
                Ok(body) => CallOutcome::Response(body.into()),
                Err(err) => CallOutcome::from_error(&err),
            }
        })
    }
}
