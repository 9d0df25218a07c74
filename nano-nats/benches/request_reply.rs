//! Request-reply through `nano-nats`, side by side with raw async-nats doing the same JSON work and
//! with `nano-http` for reference, in one run.
//!
//! Run with `cargo bench -p nano-nats --bench request_reply` (needs `nats-server`, e.g.
//! `apt-get install -y nats-server`). The run starts its own `nats-server` on a free loopback
//! port and, in this process, the servers of every variant on a multi-threaded tokio runtime:
//!
//! - **nano-nats** — a `NatsListener` serving the `echo` service (`echo.Say { param }` →
//!   `echo.Said { value: "echo_" + param }`) of a `ServiceSet`; the client is a typed
//!   `Client::call` through a set holding a `NatsClient`, a fresh root `Ctx` per call;
//! - **raw async-nats** — the baseline: a plain subscriber that decodes the request with
//!   serde_json, builds the same response, encodes it and publishes the reply; the client
//!   encodes the request with serde_json, calls `async_nats::Client::request` and decodes the
//!   reply;
//! - **raw async-nats + nano's headers** — the baseline sending the two headers `nano-nats`
//!   sends on every call (request id, caller), to tell the protocol's cost from the code's;
//! - **nano-http** — for reference: an `HttpClient` calling an `HttpListener` on loopback that
//!   serves the same set.
//!
//! The clients run on a current-thread runtime. Throughput: each variant in turn keeps
//! `BENCH_IN_FLIGHT` (32) calls in flight for `BENCH_SECONDS` (2 s), the order rotated each of
//! `BENCH_ROUNDS` (5) rounds; the ratio to raw async-nats is taken per round (the two ran
//! seconds apart, so a busy stretch of the shared machine hits both) and its median reported.
//! Latency: `BENCH_CALLS` (2,000) sequential calls per round and variant, interleaved call by
//! call in a fresh random order (seeded), p50 and p99. `BENCH_VARIANTS=nats,raw,raw-headers,http`
//! selects variants (the ratios need `raw`). The last line is the headline: nano-nats against
//! raw async-nats; the line before it compares nano-nats with raw async-nats sending the same
//! headers. `cargo test --benches` (which runs the executable without `--bench`) runs every
//! variant briefly and prints no figures; run the executable itself with `--bench` to measure.

#[path = "../tests/it/broker.rs"]
mod broker;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::StreamExt;
use nano::{Client, Ctx, NanoError, ServiceSet};
use nano_nats::{CLIENT_NAME_HEADER, NatsTransport, REQ_ID_HEADER};
use nano_server::Listener;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Say {
    param: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Said {
    value: String,
}

mod echo {
    use super::*;
    nano::api! {
        service "echo";
        fn say(Say) -> Said = "echo.Say", POST "/";
    }
}

struct Echo;

impl echo::Handler for Echo {
    async fn say(&self, _ctx: &Ctx, req: Say) -> Result<Said, NanoError> {
        Ok(answer(req))
    }
}

/// The work every variant's server does.
fn answer(req: Say) -> Said {
    Said {
        value: format!("echo_{}", req.param),
    }
}

const PARAM: &str = "testval";
const EXPECTED: &str = "echo_testval";
/// The subject the raw variants' subscriber answers on.
const RAW_SUBJECT: &str = "raw.echo.Say";
/// The caller name the nano clients call as, and the raw variant with headers sends.
const CALLER: &str = "bench";

struct Settings {
    rounds: usize,
    seconds: f64,
    in_flight: usize,
    calls: usize,
    variants: Vec<Variant>,
}

impl Settings {
    fn from_env(quick: bool) -> anyhow::Result<Self> {
        let var = |name: &str, default: f64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(default)
        };
        let variants = match std::env::var("BENCH_VARIANTS") {
            Err(_) => Variant::ALL.to_vec(),
            Ok(keys) => {
                let keys: Vec<&str> = keys.split(',').map(str::trim).collect();
                for key in &keys {
                    anyhow::ensure!(
                        Variant::ALL.iter().any(|v| v.key() == *key),
                        "unknown variant {key:?} in BENCH_VARIANTS"
                    );
                }
                Variant::ALL
                    .into_iter()
                    .filter(|v| keys.contains(&v.key()))
                    .collect()
            }
        };
        anyhow::ensure!(!variants.is_empty(), "BENCH_VARIANTS selects no variant");
        if quick {
            // Every variant briefly, so the bench cannot rot.
            return Ok(Settings {
                rounds: 1,
                seconds: 0.05,
                in_flight: 4,
                calls: 10,
                variants,
            });
        }
        Ok(Settings {
            rounds: var("BENCH_ROUNDS", 5.0) as usize,
            seconds: var("BENCH_SECONDS", 2.0),
            in_flight: var("BENCH_IN_FLIGHT", 32.0) as usize,
            calls: var("BENCH_CALLS", 2000.0) as usize,
            variants,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Nats,
    Raw,
    RawHeaders,
    Http,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::Nats,
        Variant::Raw,
        Variant::RawHeaders,
        Variant::Http,
    ];

    /// The name `BENCH_VARIANTS` selects the variant by.
    fn key(self) -> &'static str {
        match self {
            Variant::Nats => "nats",
            Variant::Raw => "raw",
            Variant::RawHeaders => "raw-headers",
            Variant::Http => "http",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Nats => "**nano-nats**",
            Variant::Raw => "raw async-nats + serde_json",
            Variant::RawHeaders => "raw async-nats + nano's two headers",
            Variant::Http => "nano-http (reference)",
        }
    }
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs the executable without it.
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let settings = Settings::from_env(quick)?;
    let broker = broker::Broker::start();
    let url = broker.url();

    // The servers, as a server executable runs them: a multi-threaded runtime, one worker per
    // core.
    let server_rt = tokio::runtime::Runtime::new()?;
    let servers = server_rt.block_on(Servers::start(&url))?;

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = client_rt.block_on(run(&settings, &url, servers.http_addr));
    drop(client_rt);
    server_rt.block_on(servers.stop())?;
    let report = result?;
    if quick {
        println!(
            "request_reply: smoke-tested {} variants",
            settings.variants.len()
        );
    } else {
        report.print(&settings);
    }
    drop(broker);
    Ok(())
}

/// The servers of every variant, running on the server runtime until [`Servers::stop`].
struct Servers {
    http_addr: std::net::SocketAddr,
    stop_nano: oneshot::Sender<()>,
    nano: tokio::task::JoinHandle<Result<(), NanoError>>,
    raw: tokio::task::JoinHandle<()>,
    raw_nats: async_nats::Client,
}

impl Servers {
    async fn start(url: &str) -> anyhow::Result<Servers> {
        // nano: the echo service of one set, served over NATS and over HTTP.
        let set = ServiceSet::builder()
            .service(echo::service(|_| Ok(Echo)))
            .build()?;
        let nats = NatsTransport::connect(url).await?;
        let nats_listener = nats.listener().expose_api(&echo::API)?;
        let http_listener = nano_http::HttpListener::bind("127.0.0.1:0")
            .await?
            .expose_api(&echo::API)?;
        let http_addr = http_listener.local_addr();
        let (stop_nano, stopped) = oneshot::channel::<()>();
        let nano = tokio::spawn(nano_server::serve_until(
            set,
            vec![nats_listener.boxed(), http_listener.boxed()],
            async {
                let _ = stopped.await;
            },
        ));

        // Raw: a plain subscriber answering each request as it reads it.
        let raw_nats = async_nats::connect(url).await?;
        let mut subscriber = raw_nats.subscribe(RAW_SUBJECT).await?;
        raw_nats.flush().await?;
        let replies = raw_nats.clone();
        let raw = tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                let Some(reply) = message.reply else { continue };
                let Ok(req) = serde_json::from_slice::<Say>(&message.payload) else {
                    continue;
                };
                let Ok(json) = serde_json::to_vec(&answer(req)) else {
                    continue;
                };
                let _ = replies.publish(reply, Bytes::from(json)).await;
            }
        });
        Ok(Servers {
            http_addr,
            stop_nano,
            nano,
            raw,
            raw_nats,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop_nano.send(());
        self.nano.await??;
        drop(self.raw_nats);
        self.raw.abort();
        Ok(())
    }
}

/// A client of one variant; cheap to clone.
#[derive(Clone)]
enum Caller {
    Nano(Client),
    Raw(async_nats::Client),
    RawHeaders(async_nats::Client),
}

impl Caller {
    async fn call(&self) -> anyhow::Result<()> {
        let req = Say {
            param: PARAM.to_owned(),
        };
        let said = match self {
            Caller::Nano(client) => client.call(&Ctx::new(), req).await?,
            Caller::Raw(nats) => {
                let payload = Bytes::from(serde_json::to_vec(&req)?);
                let reply = nats.request(RAW_SUBJECT, payload).await?;
                serde_json::from_slice(&reply.payload)?
            }
            Caller::RawHeaders(nats) => {
                let payload = Bytes::from(serde_json::to_vec(&req)?);
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(REQ_ID_HEADER, nano::RequestId::generate().as_str());
                headers.insert(CLIENT_NAME_HEADER, CALLER);
                let reply = nats
                    .request_with_headers(RAW_SUBJECT, headers, payload)
                    .await?;
                serde_json::from_slice::<Said>(&reply.payload)?
            }
        };
        anyhow::ensure!(said.value == EXPECTED, "answered {:?}", said.value);
        Ok(())
    }
}

async fn callers(
    url: &str,
    http_addr: std::net::SocketAddr,
) -> anyhow::Result<Vec<(Variant, Caller)>> {
    let nats = NatsTransport::connect(url).await?;
    let nats_set = ServiceSet::builder()
        .service(nats.api_client(&echo::API)?)
        .build()?;
    let http = nano_http::HttpTransport::new(nano_http::Peers::new())?;
    let http_set = ServiceSet::builder()
        .service(http.api_client_at(&echo::API, &http_addr.to_string())?)
        .build()?;
    let raw = async_nats::connect(url).await?;
    Ok(vec![
        (
            Variant::Nats,
            Caller::Nano(nats_set.client(CALLER, echo::NAME)?),
        ),
        (Variant::Raw, Caller::Raw(raw.clone())),
        (Variant::RawHeaders, Caller::RawHeaders(raw)),
        (
            Variant::Http,
            Caller::Nano(http_set.client(CALLER, echo::NAME)?),
        ),
    ])
}

struct Report {
    /// Per variant: requests per second of each round.
    throughput: Vec<(Variant, Vec<f64>)>,
    /// Per variant: every sequential call's time.
    latency: Vec<(Variant, Vec<Duration>)>,
}

async fn run(
    settings: &Settings,
    url: &str,
    http_addr: std::net::SocketAddr,
) -> anyhow::Result<Report> {
    let callers: Vec<(Variant, Caller)> = callers(url, http_addr)
        .await?
        .into_iter()
        .filter(|(variant, _)| settings.variants.contains(variant))
        .collect();
    // Every variant answers correctly before anything is timed, and warms its connection.
    for (variant, caller) in &callers {
        for _ in 0..200 {
            caller
                .call()
                .await
                .with_context(|| format!("{} failed", variant.label()))?;
        }
    }

    let mut throughput: Vec<(Variant, Vec<f64>)> =
        callers.iter().map(|(v, _)| (*v, Vec::new())).collect();
    let burst = Duration::from_secs_f64(settings.seconds);
    for round in 0..settings.rounds {
        // Rotated, so no variant always runs on a warmer (or busier) machine.
        for turn in 0..callers.len() {
            let which = (round + turn) % callers.len();
            let (calls, elapsed) = load(&callers[which].1, settings.in_flight, burst).await?;
            throughput[which]
                .1
                .push(calls as f64 / elapsed.as_secs_f64());
            eprintln!("  {}: {calls} calls in {elapsed:?}", callers[which].0.key());
        }
        let line: Vec<String> = throughput
            .iter()
            .map(|(v, rates)| format!("{} {:.0} req/s", v.key(), rates[round]))
            .collect();
        eprintln!("round {}: {}", round + 1, line.join(", "));
    }

    // Sequential calls, interleaved call by call in a fresh random order each time, so drift in
    // machine load hits every variant alike and no variant always follows the same other one.
    let total = settings.calls * settings.rounds;
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(total); callers.len()];
    let mut order: Vec<usize> = (0..callers.len()).collect();
    let mut rng = fastrand::Rng::with_seed(0x6e61_7473);
    for _ in 0..total {
        rng.shuffle(&mut order);
        for &which in &order {
            let started = Instant::now();
            callers[which].1.call().await?;
            times[which].push(started.elapsed());
        }
    }
    Ok(Report {
        throughput,
        latency: callers.iter().map(|(v, _)| *v).zip(times).collect(),
    })
}

/// Keeps `in_flight` calls of `caller` going for `burst`, each in its own task, and returns the
/// completed calls and the time they took.
async fn load(
    caller: &Caller,
    in_flight: usize,
    burst: Duration,
) -> anyhow::Result<(u64, Duration)> {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + burst;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (caller, done) = (caller.clone(), Arc::clone(&done));
        tasks.spawn(async move {
            while Instant::now() < until {
                caller.call().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    while let Some(ended) = tasks.join_next().await {
        ended??;
    }
    Ok((done.load(Ordering::Relaxed), started.elapsed()))
}

impl Report {
    fn rates(&self, variant: Variant) -> Option<&[f64]> {
        self.throughput
            .iter()
            .find(|(v, _)| *v == variant)
            .map(|(_, rates)| rates.as_slice())
    }

    /// Each round's throughput of `variant` over `baseline`'s in the same round: neighbours in
    /// time, so a busy stretch of the machine hits both.
    fn round_ratios(&self, variant: Variant, baseline: Variant) -> Option<Vec<f64>> {
        let (rates, base) = (self.rates(variant)?, self.rates(baseline)?);
        Some(rates.iter().zip(base).map(|(r, b)| r / b).collect())
    }

    fn p50(&self, variant: Variant) -> Option<Duration> {
        self.percentiles(variant).map(|(p50, _)| p50)
    }

    fn percentiles(&self, variant: Variant) -> Option<(Duration, Duration)> {
        let (_, times) = self.latency.iter().find(|(v, _)| *v == variant)?;
        let mut times = times.clone();
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        Some((at(0.50), at(0.99)))
    }

    fn print(&self, settings: &Settings) {
        let median = |values: &[f64]| {
            let mut values = values.to_vec();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let spread = |ratios: Option<Vec<f64>>| {
            ratios.map_or("n/a".to_owned(), |ratios| {
                let (min, max) = ratios
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
                format!("{:.3}x ({min:.3}–{max:.3})", median(&ratios))
            })
        };
        let over = |value: Option<Duration>, baseline: Option<Duration>| match (value, baseline) {
            (Some(value), Some(baseline)) => {
                format!("{:.3}x", value.as_secs_f64() / baseline.as_secs_f64())
            }
            _ => "n/a".to_owned(),
        };

        println!();
        println!(
            "### Request-reply: `echo.Say`, {} in flight for {} s per variant and round, {} \
             sequential calls per variant, {} rounds",
            settings.in_flight,
            settings.seconds,
            settings.calls * settings.rounds,
            settings.rounds
        );
        println!();
        println!(
            "| variant | req/s (median) | req/s vs raw, per round (median, range) | p50 | p99 | \
             p50 vs raw |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        for (variant, rates) in &self.throughput {
            let (p50, p99) = self.percentiles(*variant).unwrap_or_default();
            println!(
                "| {} | {:.0} | {} | {} | {} | {} |",
                variant.label(),
                median(rates),
                spread(self.round_ratios(*variant, Variant::Raw)),
                micros(p50),
                micros(p99),
                over(Some(p50), self.p50(Variant::Raw)),
            );
        }
        let round_median = |baseline| {
            self.round_ratios(Variant::Nats, baseline)
                .map(|r| median(&r))
        };
        if let (Some(throughput), Some(_)) = (round_median(Variant::Raw), self.p50(Variant::Nats)) {
            println!();
            if let Some(with_headers) = round_median(Variant::RawHeaders) {
                println!(
                    "nano-nats against raw async-nats with nano's headers (the same headers on the \
                     wire): throughput {with_headers:.3}x, p50 {}",
                    over(self.p50(Variant::Nats), self.p50(Variant::RawHeaders))
                );
            }
            println!(
                "headline: nano-nats {throughput:.3}x of raw async-nats throughput at {} in flight \
                 (target at least 0.85x), p50 {} of raw async-nats (target at most 1.15x)",
                settings.in_flight,
                over(self.p50(Variant::Nats), self.p50(Variant::Raw))
            );
        }
    }
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
