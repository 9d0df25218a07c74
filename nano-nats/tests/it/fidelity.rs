//! The transport-fidelity hook's NATS mode against the real thing: the same calls through
//! `TransportFidelity::nats()` in process and through a `NatsClient` calling a `NatsListener`
//! over a real `nats-server` must end the same way. Generated calls (a property, with variants
//! that skip a decision and must fail it) and one deterministic case per decision where NATS
//! differs from HTTP.

use std::time::Duration;

use nano::{Ctx, NanoError, ServiceSet, codes};
use nano_nats::NatsTransport;
use nano_server::Listener;
use nano_test::TransportFidelity;
use nano_test::property::{Property, PropertyFailure};
use nano_wire::nats::DEFAULT_MAX_PAYLOAD;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::broker::Broker;

/// One generated call: what the request carries and what the handler does with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Probe {
    text: String,
    note: Option<String>,
    nested: serde_json::Value,
    /// 0 answers, 1 a coded error, 2 an uncoded error with a source chain, 3 an empty error,
    /// 4 answers slowly (see `SLOW_ANSWER`), 5 answers with the text 8 times, 6 fails with a
    /// message of the text 8 times.
    outcome: u8,
}

/// What the callee answers, including what its context carried.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Probed {
    text: String,
    note: String,
    caller: String,
    request_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Ping {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Hidden {}

/// A request type the API does not declare.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Stray {}

impl nano::Request for Stray {
    type Response = ();
    const NAME: &'static str = "probe.Stray";
}

/// A lookup by key: with a `GET` route the HTTP wire refuses it (its key would be lost), the NATS
/// wire carries it as a body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Lookup {
    key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Found {
    value: String,
}

mod probe {
    use super::*;
    nano::api! {
        service "probe";
        fn probe(Probe) -> Probed = "probe.Probe", POST "/";
        // Body-less over HTTP; a JSON body over NATS.
        fn ping(Ping) -> () = "probe.Ping", GET "/ping";
        // No route: over HTTP nobody can call it, over NATS it has a subject like any other.
        fn hidden(Hidden) -> () = "probe.Hidden";
    }
}

mod dict {
    use super::*;
    nano::api! {
        service "dict";
        fn lookup(Lookup) -> Found = "dict.Lookup", GET "/";
    }
}

/// A request of a service whose name cannot be part of a subject.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Nap {}

mod spaced {
    use super::*;
    nano::api! {
        service "spaced out";
        fn nap(Nap) -> () = "spaced.Nap";
    }
}

struct ProbeService;

impl probe::Handler for ProbeService {
    async fn probe(&self, ctx: &Ctx, probe: Probe) -> Result<Probed, NanoError> {
        match probe.outcome {
            1 => Err(NanoError::new(
                "C-NO-SUCH-TEXT",
                format!("no {}", probe.text),
            )),
            2 => Err(NanoError::wrap(
                NanoError::wrap(std::io::Error::other("disk full"), "cannot store"),
                "probe failure",
            )),
            3 => Err(NanoError::msg("")),
            6 => Err(NanoError::not_found(probe.text.repeat(8))),
            outcome => {
                if outcome == 4 {
                    // Slow: well past the caller's deadline when there is one.
                    let pause = ctx
                        .remaining()
                        .map_or(SLOW_ANSWER, |left| left + SLOW_ANSWER);
                    tokio::time::sleep(pause).await;
                }
                let text = if outcome == 5 {
                    probe.text.repeat(8)
                } else {
                    probe.text
                };
                Ok(Probed {
                    text,
                    note: probe.note.unwrap_or_default(),
                    caller: ctx.caller().unwrap_or_default().to_owned(),
                    request_id: ctx.request_id().as_str().to_owned(),
                })
            }
        }
    }

    async fn ping(&self, _ctx: &Ctx, _req: Ping) -> Result<(), NanoError> {
        Ok(())
    }

    async fn hidden(&self, _ctx: &Ctx, _req: Hidden) -> Result<(), NanoError> {
        Ok(())
    }
}

struct DictService;

impl dict::Handler for DictService {
    async fn lookup(&self, _ctx: &Ctx, req: Lookup) -> Result<Found, NanoError> {
        Ok(Found {
            value: format!("found <{}>", req.key),
        })
    }
}

/// The listener's (and the hook's) body limit: below the broker's `max_payload`, so that both
/// limits can be reached.
const BODY_LIMIT: usize = 256 << 10;

/// A caller's deadline, long enough for a body near the limits to cross the broker on a busy
/// machine, so that only the slow answer runs out of time.
const DEADLINE: Duration = Duration::from_secs(2);

/// How far past a deadline (or how long without one) the slow answer takes.
const SLOW_ANSWER: Duration = Duration::from_millis(300);

fn services() -> nano::ServiceSetBuilder {
    ServiceSet::builder()
        .service(probe::service(|_| Ok(ProbeService)))
        .service(dict::service(|_| Ok(DictService)))
}

/// The services in process behind `fidelity`, which has learnt their APIs.
fn in_process(fidelity: TransportFidelity) -> Result<ServiceSet, NanoError> {
    let set = services().hook(fidelity.clone()).build()?;
    fidelity.learn_apis(&set)?;
    Ok(set)
}

/// The services served by a `NatsListener` over a real broker, and a set that reaches them
/// through `NatsClient`s, until dropped.
struct OverNats {
    clients: ServiceSet,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), NanoError>>,
    broker: Broker,
}

impl OverNats {
    async fn start() -> Result<OverNats, NanoError> {
        let broker = Broker::start();
        let server_side = NatsTransport::connect(&broker.url()).await?;
        let listener = server_side
            .listener()
            .expose_api(&probe::API)?
            .expose_api(&dict::API)?
            .body_limit(BODY_LIMIT)
            .grace_period(Duration::from_millis(100));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(nano_server::serve_until(
            services().build()?,
            vec![listener.boxed()],
            async {
                let _ = stopped.await;
            },
        ));
        let client_side = NatsTransport::connect(&broker.url()).await?;
        let clients = ServiceSet::builder()
            .service(client_side.api_client(&probe::API)?)
            .service(client_side.api_client(&dict::API)?)
            .build()?;
        // Serving has begun once a call is answered.
        for _ in 0..200 {
            let client = clients.client("test", "probe")?;
            if client.call(&Ctx::new(), Ping {}).await.is_ok() {
                return Ok(OverNats {
                    clients,
                    stop: Some(stop),
                    server,
                    broker,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(NanoError::unavailable(
            "the probe was not served within 2 s",
        ))
    }

    async fn stop(mut self) -> Result<(), NanoError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.server).await.expect("the server task")
    }
}

/// What a call is, apart from the request: the caller's name, the request id, a deadline.
#[derive(Debug, Clone)]
struct Call {
    kind: Kind,
    probe: Probe,
    caller: String,
    request_id: String,
    deadline: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Probe,
    Ping,
    Hidden,
    Stray,
    Lookup,
}

/// How `call` ends through `set`, as the caller sees it, in a comparable form.
async fn outcome(set: &ServiceSet, call: &Call) -> String {
    let client = |service: &str| set.client(&call.caller, service);
    let mut ctx = Ctx::with_request_id(call.request_id.as_str());
    if call.deadline {
        ctx = ctx.with_deadline(tokio::time::Instant::now() + DEADLINE);
    }
    let result: Result<String, NanoError> = async {
        Ok(match call.kind {
            Kind::Probe => format!(
                "{:?}",
                client("probe")?.call(&ctx, call.probe.clone()).await?
            ),
            Kind::Ping => format!("{:?}", client("probe")?.call(&ctx, Ping {}).await?),
            Kind::Hidden => format!("{:?}", client("probe")?.call(&ctx, Hidden {}).await?),
            Kind::Stray => format!("{:?}", client("probe")?.call(&ctx, Stray {}).await?),
            Kind::Lookup => {
                let key = call.probe.text.clone();
                format!("{:?}", client("dict")?.call(&ctx, Lookup { key }).await?)
            }
        })
    }
    .await;
    match result {
        Ok(ok) => format!("ok {ok}"),
        Err(err) => format!("error {:?} {:?}", err.code(), err.to_string()),
    }
}

async fn differential(
    fidelity: &ServiceSet,
    nats: &ServiceSet,
    call: Call,
) -> Result<(), TestCaseError> {
    let predicted = outcome(fidelity, &call).await;
    let real = outcome(nats, &call).await;
    if predicted == real {
        Ok(())
    } else {
        let cut = |s: &str| s.chars().take(300).collect::<String>();
        Err(TestCaseError::fail(format!(
            "fidelity: {}\nnats:     {}",
            cut(&predicted),
            cut(&real)
        )))
    }
}

/// Caller names: fine ones, and ones that the client cannot send (a control character) or the
/// listener refuses (outside the id alphabet, too long, invalid once trimmed).
static CALLERS: [&str; 8] = [
    "test",
    "svc.a-1:b_c",
    "a b",
    "bad\nname",
    "café",
    " a b",
    "tab\tin",
    "x",
];

/// Request ids besides a fresh one: fine, refused by the listener, unsendable, too long.
fn request_ids() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(()).prop_map(|()| nano::RequestId::generate().as_str().to_owned()),
        1 => Just("req-1".to_owned()),
        1 => Just("x y".to_owned()),
        1 => Just("ünï".to_owned()),
        1 => Just("id\u{7}".to_owned()),
        1 => Just("i".repeat(129)),
    ]
}

fn calls() -> impl Strategy<Value = Call> {
    let text = prop_oneof![
        4 => any::<String>(),
        1 => Just(String::new()),
        // Around the body limit, the JSON's own bytes included.
        1 => (BODY_LIMIT - 160..BODY_LIMIT + 40).prop_map(|n| "x".repeat(n)),
        // Around the broker's max_payload, headers included.
        1 => (DEFAULT_MAX_PAYLOAD - 300..DEFAULT_MAX_PAYLOAD + 40).prop_map(|n| "x".repeat(n)),
        // Eight times over, around max_payload: the answers of outcomes 5 and 6.
        1 => (DEFAULT_MAX_PAYLOAD / 8 - 40..DEFAULT_MAX_PAYLOAD / 8 + 10)
            .prop_map(|n| "x".repeat(n)),
    ];
    let nested = prop_oneof![
        Just(serde_json::Value::Null),
        (120usize..136).prop_map(|depth| {
            let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            serde_json::from_str::<serde_json::Value>(&json).unwrap_or_default()
        }),
    ];
    let probe = (text, proptest::option::of("\\PC{0,8}"), nested, 0u8..7).prop_map(
        |(text, note, nested, outcome)| Probe {
            text,
            note,
            nested,
            outcome,
        },
    );
    let kind = prop_oneof![
        6 => Just(Kind::Probe),
        1 => Just(Kind::Ping),
        1 => Just(Kind::Hidden),
        1 => Just(Kind::Stray),
        1 => Just(Kind::Lookup),
    ];
    let caller = prop_oneof![
        2 => Just(CALLERS[0]),
        1 => proptest::sample::select(&CALLERS[..]),
    ];
    (kind, probe, caller, request_ids(), any::<bool>()).prop_map(
        |(kind, probe, caller, request_id, deadline)| Call {
            kind,
            probe,
            caller: caller.to_owned(),
            request_id,
            deadline,
        },
    )
}

fn nats_fidelity() -> TransportFidelity {
    TransportFidelity::nats().body_limit(BODY_LIMIT)
}

#[tokio::test(flavor = "multi_thread")]
async fn fidelity_in_nats_mode_and_real_nats_agree_on_generated_calls() -> Result<(), NanoError> {
    let nats = OverNats::start().await?;
    let fidelity = in_process(nats_fidelity())?;
    Property::new(calls())
        .config(Config {
            cases: 64,
            failure_persistence: None,
            ..Config::default()
        })
        .run(|call| differential(&fidelity, &nats.clients, call))
        .await;
    nats.stop().await
}

/// The differential property of `set` against `nats`, with a fixed seed, expected to fail
/// (`passed` is the panic message when it does not).
async fn differential_fails(set: &ServiceSet, nats: &ServiceSet, passed: &str) -> PropertyFailure {
    Property::new(calls())
        .config(Config {
            cases: 256,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(14),
            max_shrink_iters: 64,
            ..Config::default()
        })
        .check(|call| differential(set, nats, call))
        .await
        .expect_err(passed)
}

/// A variant of the hook that leaves out one decision must fail the property, with a case that
/// shows the decision.
async fn broken_variant_fails(fidelity: TransportFidelity, shown: &str) -> Result<(), NanoError> {
    let nats = OverNats::start().await?;
    let fidelity = in_process(fidelity)?;
    let failure = differential_fails(
        &fidelity,
        &nats.clients,
        "the broken variant passed the differential property",
    )
    .await;
    assert!(failure.reason.contains(shown), "{failure}");
    nats.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn skipping_the_brokers_max_payload_fails_the_differential_property() -> Result<(), NanoError>
{
    broken_variant_fails(nats_fidelity().max_payload(usize::MAX), "max_payload").await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_http_modes_decisions_fail_the_differential_property_against_nats()
-> Result<(), NanoError> {
    // The HTTP wire refuses the dict API outright (a GET route for a type with fields), so the
    // variant is tried without it: the route-less type is what tells the wires apart.
    let nats = OverNats::start().await?;
    let http = TransportFidelity::new().body_limit(BODY_LIMIT);
    let err = in_process(http.clone()).unwrap_err();
    assert_eq!(err.code(), codes::INIT_FAILED, "{err}");
    let set = ServiceSet::builder()
        .service(probe::service(|_| Ok(ProbeService)))
        .service(dict::service(|_| Ok(DictService)))
        .hook(http.clone().api(&probe::API)?)
        .build()?;
    let failure = differential_fails(
        &set,
        &nats.clients,
        "the HTTP mode passed the differential property against NATS",
    )
    .await;
    assert!(failure.reason.contains("fidelity: error"), "{failure}");
    nats.stop().await
}

/// One call per decision where the NATS wire decides differently from HTTP, each with the code
/// it must end with, through the hook and over real NATS.
#[tokio::test(flavor = "multi_thread")]
async fn each_nats_decision_is_the_same_in_process_and_over_nats() -> Result<(), NanoError> {
    let nats = OverNats::start().await?;
    let fidelity = in_process(nats_fidelity())?;
    let id = || nano::RequestId::generate().as_str().to_owned();
    let call = |kind: Kind, text: String, outcome: u8| Call {
        kind,
        probe: Probe {
            text,
            outcome,
            ..Probe::default()
        },
        caller: "test".to_owned(),
        request_id: id(),
        deadline: false,
    };
    let x = |n: usize| "x".repeat(n);
    let cases: Vec<(&str, Call, &str)> = vec![
        (
            "a route-less type travels",
            call(Kind::Hidden, String::new(), 0),
            "ok",
        ),
        (
            "a GET type travels as a body",
            call(Kind::Ping, String::new(), 0),
            "ok",
        ),
        (
            "a GET type with fields keeps them",
            call(Kind::Lookup, "k1".into(), 0),
            "ok",
        ),
        (
            "an undeclared type is refused unsent",
            call(Kind::Stray, String::new(), 0),
            codes::BAD_REQUEST_TYPE,
        ),
        (
            "a caller outside the id alphabet",
            Call {
                caller: "a b".into(),
                ..call(Kind::Probe, String::new(), 0)
            },
            codes::BAD_REQUEST,
        ),
        (
            "a non-ASCII caller reaches the listener",
            Call {
                caller: "café".into(),
                ..call(Kind::Probe, String::new(), 0)
            },
            codes::BAD_REQUEST,
        ),
        (
            "a caller read trimmed",
            Call {
                caller: " a b".into(),
                ..call(Kind::Probe, String::new(), 0)
            },
            codes::BAD_REQUEST,
        ),
        (
            "a caller that cannot be a header line",
            Call {
                caller: "bad\nname".into(),
                ..call(Kind::Probe, String::new(), 0)
            },
            codes::ENCODE,
        ),
        (
            "a request id that is too long",
            Call {
                request_id: "i".repeat(129),
                ..call(Kind::Probe, String::new(), 0)
            },
            codes::BAD_REQUEST,
        ),
        (
            "a request id with a control character",
            Call {
                request_id: "id\u{7}".into(),
                ..call(Kind::Probe, String::new(), 0)
            },
            codes::ENCODE,
        ),
        (
            "over the listener's body limit",
            call(Kind::Probe, x(BODY_LIMIT), 0),
            codes::PAYLOAD_TOO_LARGE,
        ),
        (
            "over the broker's max_payload with the headers",
            call(Kind::Probe, x(DEFAULT_MAX_PAYLOAD - 100), 0),
            codes::PAYLOAD_TOO_LARGE,
        ),
        (
            "a response over max_payload",
            call(Kind::Probe, x(DEFAULT_MAX_PAYLOAD / 8 + 10), 5),
            codes::SERVER_ERROR,
        ),
        (
            "an error reply over max_payload",
            call(Kind::Probe, x(DEFAULT_MAX_PAYLOAD / 8 + 10), 6),
            codes::SERVER_ERROR,
        ),
        (
            "a response just under max_payload",
            call(Kind::Probe, x(DEFAULT_MAX_PAYLOAD / 8 - 40), 5),
            "ok",
        ),
        (
            "past the caller's deadline",
            Call {
                deadline: true,
                ..call(Kind::Probe, String::new(), 4)
            },
            codes::TIMEOUT,
        ),
        (
            "a coded error",
            call(Kind::Probe, "it".into(), 1),
            "C-NO-SUCH-TEXT",
        ),
        (
            "an error without a code or message",
            call(Kind::Probe, String::new(), 3),
            codes::SERVER_ERROR,
        ),
    ];
    for (what, call, code) in cases {
        let predicted = outcome(&fidelity, &call).await;
        let real = outcome(&nats.clients, &call).await;
        assert_eq!(predicted, real, "{what}");
        let expected = if code == "ok" {
            "ok ".to_owned()
        } else {
            format!("error {code:?}")
        };
        assert!(real.starts_with(&expected), "{what}: {real}");
    }

    // An API whose names cannot be part of a subject is refused by both, alike.
    let err = nats_fidelity().api(&spaced::API).unwrap_err();
    let transport = NatsTransport::connect(&nats.broker.url()).await?;
    let real = transport.api_client(&spaced::API).unwrap_err();
    assert_eq!(err.code(), codes::INIT_FAILED);
    assert_eq!(err.to_string(), real.to_string());
    nats.stop().await
}
