//! The HTTP transport under load, side by side with bare axum and bare reqwest, in one run.
//!
//! Run with `cargo bench -p services --bench http_load` (needs `wrk` on the `PATH`, e.g.
//! `apt-get install -y wrk`). The run:
//!
//! 1. starts `server1` (all four services, svc2 exposed through `nano-http`) with its default
//!    log filter, `server1` again with `RUST_LOG=info` (which adds nano's per-call tracing span),
//!    and a bare axum + serde_json server doing the same string work for `POST /svc2/`, each as
//!    a child process on a free loopback port with the same tokio runtime settings;
//! 2. loads them in rotation with `wrk` (32 connections, `POST /svc2/ {"param":"testval"}`)
//!    over several rounds and reports median throughput and p50/p99 latency per server, the
//!    ratios, and the peak RSS (`VmHWM`) of each server process afterwards;
//! 3. makes sequential calls to the bare server, interleaved call by call, and reports the p50
//!    and p99 time per call and the ratios to a bare `reqwest` + serde_json call: through a
//!    `nano-http` client (a typed `Client::call` through a set), through the bare call plus
//!    what the protocol adds on the wire (the `X-Nano-Req-Id`/`X-Nano-Client-Name` headers, a
//!    30 s timeout per request or on the client, and both), and through a bare `hyper-util`
//!    call, the HTTP/1.1 client `nano-http` is built on.
//!
//! `BENCH_ROUNDS`, `BENCH_SECONDS`, `BENCH_CONNECTIONS`, `BENCH_THREADS` and `BENCH_CALLS`
//! override the defaults. `BENCH_CLIENT_ONLY=1` skips the servers' load (and `wrk`), and
//! `BENCH_VARIANTS=bare,nano,...` times only the named client variants (`bare`, `headers`,
//! `request-timeout`, `client-timeout`, `protocol`, `hyper`, `nano`), e.g. to count
//! instructions per call of one variant under a profiler.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use nano::{Ctx, ServiceSet};
use nano_test::deploy::{ServerProcess, StartOptions};
use services::api::svc2;

/// Set in the environment of the child that serves the bare axum baseline.
const ROLE_ENV: &str = "HTTP_LOAD_BENCH_ROLE";
const BARE_ROLE: &str = "bare-axum-server";

fn main() -> anyhow::Result<()> {
    if std::env::var(ROLE_ENV).as_deref() == Ok(BARE_ROLE) {
        return bare::serve();
    }
    let settings = Settings::from_env();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(&settings))
}

struct Settings {
    rounds: usize,
    seconds: u64,
    connections: usize,
    threads: usize,
    calls: usize,
    client_only: bool,
    variants: Option<Vec<String>>,
}

impl Settings {
    fn from_env() -> Self {
        let var = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Settings {
            rounds: var("BENCH_ROUNDS", 5) as usize,
            seconds: var("BENCH_SECONDS", 5),
            connections: var("BENCH_CONNECTIONS", 32) as usize,
            threads: var("BENCH_THREADS", 1) as usize,
            calls: var("BENCH_CALLS", 2000) as usize,
            client_only: var("BENCH_CLIENT_ONLY", 0) != 0,
            variants: std::env::var("BENCH_VARIANTS")
                .ok()
                .map(|v| v.split(',').map(|k| k.trim().to_owned()).collect()),
        }
    }
}

async fn run(settings: &Settings) -> anyhow::Result<()> {
    let mut bare_command = Command::new(std::env::current_exe()?);
    bare_command.env(ROLE_ENV, BARE_ROLE);
    let bare_server =
        ServerProcess::spawn("bare-axum", bare_command, Duration::from_secs(30)).await?;
    check_response(&bare_server).await?;
    if !settings.client_only {
        load_servers(&bare_server, settings).await?;
    }

    let calls = sequential_calls(bare_server.addr(), settings).await?;
    println!();
    println!(
        "### Client: sequential `POST /svc2/` calls against the bare server ({} each, interleaved)",
        settings.rounds * settings.calls
    );
    println!();
    // The nano-http client wraps hyper-util's, so the bare hyper-util call is its like-for-like
    // baseline; bare reqwest is the general-purpose one.
    println!(
        "| client | p50 per call | p99 per call | p50 vs bare reqwest | p50 vs bare hyper-util |"
    );
    println!("|---|---:|---:|---:|---:|");
    let p50_of = |wanted: Variant| {
        calls
            .iter()
            .find(|(variant, _)| *variant == wanted)
            .map(|(_, times)| times.p50)
    };
    let (bare, hyper) = (p50_of(Variant::Bare), p50_of(Variant::Hyper));
    let ratio = |p50: Duration, baseline: Option<Duration>| {
        baseline.map_or("n/a".into(), |baseline| {
            format!("{:.3}x", p50.as_secs_f64() / baseline.as_secs_f64())
        })
    };
    for (variant, times) in &calls {
        println!(
            "| {} | {} | {} | {} | {} |",
            variant.label(),
            micros(times.p50),
            micros(times.p99),
            ratio(times.p50, bare),
            ratio(times.p50, hyper),
        );
    }
    Ok(())
}

/// Checks that `server` answers the benchmark's request as svc2 does, before anything is timed.
async fn check_response(server: &ServerProcess) -> anyhow::Result<()> {
    let body = reqwest::Client::new()
        .post(format!("{}/svc2/", server.url()))
        .header("content-type", nano_http::JSON_CONTENT_TYPE)
        .body(r#"{"param":"testval"}"#)
        .send()
        .await?
        .text()
        .await?;
    anyhow::ensure!(
        body == r#"{"value":"svc2_svc1_testval"}"#,
        "{} answered {body}",
        server.name()
    );
    Ok(())
}

/// Starts the two server1 variants and loads them and `bare_server` with `wrk` in rotation.
async fn load_servers(bare_server: &ServerProcess, settings: &Settings) -> anyhow::Result<()> {
    anyhow::ensure!(
        Command::new("wrk").arg("--version").output().is_ok(),
        "wrk is not on the PATH; install it (e.g. `apt-get install -y wrk`)"
    );
    // server1 as deployed (default flags and log filter), and once more with RUST_LOG=info,
    // which adds the per-call tracing spans.
    let start_server1 = |env: Vec<(String, String)>| {
        let options = StartOptions {
            env,
            ..StartOptions::default()
        };
        async move {
            ServerProcess::start(
                "server1",
                env!("CARGO_BIN_EXE_server1").as_ref(),
                &[],
                &options,
            )
            .await
        }
    };
    let nano_server = start_server1(Vec::new()).await?;
    let spans_server = start_server1(vec![("RUST_LOG".into(), "info".into())]).await?;
    for server in [&nano_server, &spans_server] {
        check_response(server).await?;
    }

    let script = std::env::temp_dir().join(format!("nano-http-load-{}.lua", std::process::id()));
    std::fs::write(
        &script,
        "wrk.method = \"POST\"\n\
         wrk.body = '{\"param\":\"testval\"}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json; charset=utf-8\"\n",
    )?;
    let load = Load {
        script: script.display().to_string(),
        threads: settings.threads,
        connections: settings.connections,
    };

    eprintln!("warming up");
    let servers = [bare_server, &nano_server, &spans_server];
    for server in servers {
        load.run(server.addr(), 2)?;
    }
    let mut rounds: [Vec<LoadResult>; 3] = Default::default();
    for round in 0..settings.rounds {
        // Rotate the order so no server always runs on a warmer (or busier) machine.
        for turn in 0..servers.len() {
            let which = (round + turn) % servers.len();
            rounds[which].push(load.run(servers[which].addr(), settings.seconds)?);
        }
        eprintln!(
            "round {}: bare {:.0} req/s, nano {:.0} req/s, nano with spans {:.0} req/s",
            round + 1,
            rounds[0][round].requests_per_sec,
            rounds[1][round].requests_per_sec,
            rounds[2][round].requests_per_sec
        );
    }
    let _ = std::fs::remove_file(&script);
    let [bare, nano, spans] = rounds.map(|r| LoadResult::median(&r));

    println!();
    println!(
        "### Server: `POST /svc2/`, {} connections, {} wrk thread(s), {} rounds of {} s (medians)",
        settings.connections, settings.threads, settings.rounds, settings.seconds
    );
    println!();
    println!("| server | req/s | p50 | p99 | peak RSS | req/s vs bare | p99 vs bare |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let row = |name: &str, result: LoadResult, pid: u32| {
        println!(
            "| {name} | {:.0} | {} | {} | {} | {:.3}x | {:.3}x |",
            result.requests_per_sec,
            micros(result.p50),
            micros(result.p99),
            mib(peak_rss_kib(pid)),
            result.requests_per_sec / bare.requests_per_sec,
            result.p99.as_secs_f64() / bare.p99.as_secs_f64()
        );
    };
    row("bare axum + serde_json", bare, bare_server.pid());
    row("**nano server1**", nano, nano_server.pid());
    row(
        "nano server1, RUST_LOG=info (spans)",
        spans,
        spans_server.pid(),
    );
    Ok(())
}

/// One `wrk` configuration.
struct Load {
    script: String,
    threads: usize,
    connections: usize,
}

#[derive(Debug, Clone, Copy)]
struct LoadResult {
    requests_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

impl Load {
    fn run(&self, addr: SocketAddr, seconds: u64) -> anyhow::Result<LoadResult> {
        let output = Command::new("wrk")
            .args([
                "--latency",
                "-t",
                &self.threads.to_string(),
                "-c",
                &self.connections.to_string(),
                "-d",
                &format!("{seconds}s"),
                "-s",
                &self.script,
                &format!("http://{addr}/svc2/"),
            ])
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        anyhow::ensure!(output.status.success(), "wrk failed: {text}");
        anyhow::ensure!(
            !text.contains("Non-2xx"),
            "the server answered errors under load: {text}"
        );
        let field = |prefix: &str| {
            text.lines()
                .map(str::trim)
                .find_map(|line| line.strip_prefix(prefix))
                .map(str::trim)
                .ok_or_else(|| anyhow::anyhow!("no {prefix:?} in wrk output: {text}"))
        };
        Ok(LoadResult {
            requests_per_sec: field("Requests/sec:")?.parse()?,
            p50: parse_wrk_duration(field("50%")?)?,
            p99: parse_wrk_duration(field("99%")?)?,
        })
    }
}

impl LoadResult {
    fn median(rounds: &[LoadResult]) -> LoadResult {
        let median_of = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        LoadResult {
            requests_per_sec: median_of(rounds.iter().map(|r| r.requests_per_sec).collect()),
            p50: Duration::from_secs_f64(median_of(
                rounds.iter().map(|r| r.p50.as_secs_f64()).collect(),
            )),
            p99: Duration::from_secs_f64(median_of(
                rounds.iter().map(|r| r.p99.as_secs_f64()).collect(),
            )),
        }
    }
}

/// Parses wrk's `123.45us`, `1.20ms` or `2.00s`.
fn parse_wrk_duration(text: &str) -> anyhow::Result<Duration> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        anyhow::bail!("unknown wrk duration {text:?}")
    };
    Ok(Duration::from_secs_f64(number.parse::<f64>()? * scale))
}

/// Peak resident set size of a process, from `/proc` (Linux only; `None` elsewhere).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |kib| {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    })
}

/// The sequential client variants, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Bare,
    BareHeaders,
    BareRequestTimeout,
    BareClientTimeout,
    BareProtocol,
    Hyper,
    Nano,
}

impl Variant {
    const ALL: [Variant; 7] = [
        Variant::Bare,
        Variant::BareHeaders,
        Variant::BareRequestTimeout,
        Variant::BareClientTimeout,
        Variant::BareProtocol,
        Variant::Hyper,
        Variant::Nano,
    ];

    /// The name `BENCH_VARIANTS` selects the variant by.
    fn key(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::BareHeaders => "headers",
            Variant::BareRequestTimeout => "request-timeout",
            Variant::BareClientTimeout => "client-timeout",
            Variant::BareProtocol => "protocol",
            Variant::Hyper => "hyper",
            Variant::Nano => "nano",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Bare => "bare reqwest + serde_json",
            Variant::BareHeaders => "bare + nano headers",
            Variant::BareRequestTimeout => "bare + 30 s timeout per request",
            Variant::BareClientTimeout => "bare + 30 s timeout on the client",
            Variant::BareProtocol => "bare + nano headers + timeout per request",
            Variant::Hyper => "bare hyper-util",
            Variant::Nano => "**nano-http client**",
        }
    }
}

/// Times of sequential calls through the nano-http client and through bare reqwest calls with
/// and without what nano-http adds on the wire, interleaved call by call.
async fn sequential_calls(
    addr: SocketAddr,
    settings: &Settings,
) -> anyhow::Result<Vec<(Variant, CallTimes)>> {
    let transport = nano_http::HttpTransport::new(Default::default())?;
    let remote = transport.api_client_at(&svc2::API, &addr.to_string())?;
    let set = ServiceSet::builder().service(remote).build()?;
    let nano_client = set.client("bench", svc2::NAME)?;
    let bare_client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()?;
    let timeout_client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(nano_http::DEFAULT_TIMEOUT)
        .build()?;
    let url = &reqwest::Url::parse(&format!("http://{addr}/svc2/"))?;
    let uri: &http::Uri = &format!("http://{addr}/svc2/").parse()?;
    let hyper_client = &{
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build::<_, http_body_util::Full<bytes::Bytes>>(connector)
    };
    let nano_client = &nano_client;

    let call = |variant: Variant| {
        let client = if variant == Variant::BareClientTimeout {
            &timeout_client
        } else {
            &bare_client
        };
        let headers = matches!(variant, Variant::BareHeaders | Variant::BareProtocol);
        let timeout = matches!(variant, Variant::BareRequestTimeout | Variant::BareProtocol);
        async move {
            if variant == Variant::Nano {
                let resp = nano_client
                    .call(
                        &Ctx::new(),
                        svc2::Req {
                            param: "testval".into(),
                        },
                    )
                    .await?;
                anyhow::ensure!(resp.value == "svc2_svc1_testval");
                return Ok(());
            }
            if variant == Variant::Hyper {
                use http_body_util::BodyExt;
                let body = serde_json::to_vec(&svc2::Req {
                    param: "testval".into(),
                })?;
                let request = http::Request::post(uri.clone())
                    .header(http::header::CONTENT_TYPE, nano_http::JSON_CONTENT_TYPE)
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
                let response = hyper_client.request(request).await?;
                anyhow::ensure!(response.status().is_success());
                let bytes = response.into_body().collect().await?.to_bytes();
                let resp: svc2::Resp = serde_json::from_slice(&bytes)?;
                anyhow::ensure!(resp.value == "svc2_svc1_testval");
                return Ok(());
            }
            let mut request = client
                .post(url.clone())
                .header("content-type", nano_http::JSON_CONTENT_TYPE);
            if headers {
                request = request
                    .header(
                        nano_http::REQ_ID_HEADER,
                        nano::RequestId::generate().as_str(),
                    )
                    .header(nano_http::CLIENT_NAME_HEADER, "bench");
            }
            if timeout {
                request = request.timeout(nano_http::DEFAULT_TIMEOUT);
            }
            let body = serde_json::to_vec(&svc2::Req {
                param: "testval".into(),
            })?;
            let bytes = request
                .body(body)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            let resp: svc2::Resp = serde_json::from_slice(&bytes)?;
            anyhow::ensure!(resp.value == "svc2_svc1_testval");
            Ok(())
        }
    };

    let variants: Vec<Variant> = match &settings.variants {
        None => Variant::ALL.to_vec(),
        Some(keys) => {
            for key in keys {
                anyhow::ensure!(
                    Variant::ALL.iter().any(|v| v.key() == key),
                    "unknown variant {key:?} in BENCH_VARIANTS"
                );
            }
            Variant::ALL
                .into_iter()
                .filter(|v| keys.iter().any(|k| k == v.key()))
                .collect()
        }
    };
    anyhow::ensure!(!variants.is_empty(), "BENCH_VARIANTS selects no variant");
    // Warm up the pools.
    for _ in 0..200 {
        for &variant in &variants {
            call(variant).await?;
        }
    }
    // Interleaved call by call, so drift in machine load hits every variant alike, in a fresh
    // random order each time: a fixed rotation would always run a variant right after the same
    // other one, and a call right after one on another connection (the variants have their own
    // pools) is slower than one right after a call on the same connection. Percentiles keep
    // stray slow calls out.
    let total = settings.calls * settings.rounds;
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(total); variants.len()];
    let mut order: Vec<usize> = (0..variants.len()).collect();
    let mut rng = fastrand::Rng::with_seed(0x6e61_6e6f);
    for _ in 0..total {
        rng.shuffle(&mut order);
        for &which in &order {
            let started = Instant::now();
            call(variants[which]).await?;
            times[which].push(started.elapsed());
        }
    }
    Ok(variants
        .into_iter()
        .zip(times.into_iter().map(CallTimes::of))
        .collect())
}

/// Percentiles of individual call times.
#[derive(Debug, Clone, Copy)]
struct CallTimes {
    p50: Duration,
    p99: Duration,
}

impl CallTimes {
    fn of(mut times: Vec<Duration>) -> CallTimes {
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        CallTimes {
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

/// The baseline: a bare axum server with a serde_json handler doing svc2's string work
/// (`"svc2_" + ("svc1_" + param)`) for `POST /svc2/`.
mod bare {
    use axum::Json;
    use axum::routing::post;
    use axum::serve::ListenerExt;
    use services::api::{svc1, svc2};

    async fn svc2_handler(Json(req): Json<svc2::Req>) -> Json<svc2::Resp> {
        let svc1 = svc1::Resp {
            value: format!("svc1_{}", req.param),
        };
        Json(svc2::Resp {
            value: format!("svc2_{}", svc1.value),
        })
    }

    pub(crate) fn serve() -> anyhow::Result<()> {
        // The same runtime as the server executables: multi-threaded, one worker per core.
        tokio::runtime::Runtime::new()?.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            // Like nano-http's listener, answer without Nagle's delay.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            eprintln!("{} addr={addr} server=bare-axum", nano_server::READY_PREFIX);
            let app = axum::Router::new()
                .route("/svc2/", post(svc2_handler))
                .route("/health-check", axum::routing::get(|| async {}));
            axum::serve(listener, app).await?;
            Ok(())
        })
    }
}
