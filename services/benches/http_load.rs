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
//! 3. makes sequential calls to the bare server through a `nano-http` client (a typed
//!    `Client::call` through a set), through a bare `reqwest` + serde_json call, and through the
//!    same bare call plus the protocol's `X-Nano-Req-Id`/`X-Nano-Client-Name` headers and the
//!    client's default 30 s timeout, interleaved call by call, and reports the p50 and p99 time
//!    per call and the ratios to the bare call.
//!
//! `BENCH_ROUNDS`, `BENCH_SECONDS`, `BENCH_CONNECTIONS`, `BENCH_THREADS` and `BENCH_CALLS`
//! override the defaults.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use nano::{Ctx, ServiceSet};
use services::api::svc2;
use services::deploy::{Options, ServerProcess};

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
        }
    }
}

async fn run(settings: &Settings) -> anyhow::Result<()> {
    anyhow::ensure!(
        Command::new("wrk").arg("--version").output().is_ok(),
        "wrk is not on the PATH; install it (e.g. `apt-get install -y wrk`)"
    );
    // server1 as deployed (default flags and log filter), and once more with RUST_LOG=info,
    // which adds the per-call tracing spans.
    let start_server1 = |env: Vec<(String, String)>| {
        let options = Options {
            env,
            ..Options::default()
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
    let mut bare_command = Command::new(std::env::current_exe()?);
    bare_command.env(ROLE_ENV, BARE_ROLE);
    let bare_server =
        ServerProcess::spawn("bare-axum", bare_command, Duration::from_secs(30)).await?;

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

    // Responses must match before anything is timed.
    for server in [&nano_server, &spans_server, &bare_server] {
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
    }

    eprintln!("warming up");
    let servers = [&bare_server, &nano_server, &spans_server];
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

    let calls = sequential_calls(bare_server.addr(), settings).await?;

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
    println!();
    println!(
        "### Client: sequential `POST /svc2/` calls against the bare server ({} each, interleaved)",
        settings.rounds * settings.calls
    );
    println!();
    println!("| client | p50 per call | p99 per call | p50 vs bare |");
    println!("|---|---:|---:|---:|");
    let call_row = |name: &str, times: CallTimes| {
        println!(
            "| {name} | {} | {} | {:.3}x |",
            micros(times.p50),
            micros(times.p99),
            times.p50.as_secs_f64() / calls.bare.p50.as_secs_f64()
        );
    };
    call_row("bare reqwest + serde_json", calls.bare);
    call_row("bare reqwest + nano headers + timeout", calls.bare_protocol);
    call_row("**nano-http client**", calls.nano);
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

/// Times of sequential calls through the nano-http client, a bare reqwest call, and a bare
/// reqwest call that also sends the protocol's two headers with a 30 s timeout (what nano-http
/// does on the wire), interleaved call by call.
async fn sequential_calls(addr: SocketAddr, settings: &Settings) -> anyhow::Result<ClientResults> {
    let transport = nano_http::HttpTransport::new(Default::default())?;
    let remote = transport.client_at(svc2::NAME, &addr.to_string(), svc2::endpoints())?;
    let set = ServiceSet::builder().service(remote).build()?;
    let nano_client = set.client("bench", svc2::NAME)?;
    let bare_client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()?;
    let url = reqwest::Url::parse(&format!("http://{addr}/svc2/"))?;

    let nano_call = || async {
        let resp = nano_client
            .call(
                &Ctx::new(),
                svc2::Req {
                    param: "testval".into(),
                },
            )
            .await?;
        anyhow::ensure!(resp.value == "svc2_svc1_testval");
        Ok(())
    };
    let bare_call = |protocol: bool| {
        let mut request = bare_client
            .post(url.clone())
            .header("content-type", nano_http::JSON_CONTENT_TYPE);
        if protocol {
            request = request
                .header(
                    nano_http::REQ_ID_HEADER,
                    nano::RequestId::generate().as_str(),
                )
                .header(nano_http::CLIENT_NAME_HEADER, "bench")
                .timeout(nano_http::DEFAULT_TIMEOUT);
        }
        async move {
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

    // Warm up the pools.
    for _ in 0..200 {
        nano_call().await?;
        bare_call(false).await?;
        bare_call(true).await?;
    }
    // Interleaved call by call (rotating which goes first), so drift in machine load hits every
    // variant alike; percentiles keep stray slow calls out.
    let total = settings.calls * settings.rounds;
    let mut times: [Vec<Duration>; 3] = Default::default();
    for i in 0..total {
        for turn in 0..3 {
            let variant = (i + turn) % 3;
            let started = Instant::now();
            match variant {
                0 => nano_call().await?,
                1 => bare_call(false).await?,
                _ => bare_call(true).await?,
            }
            times[variant].push(started.elapsed());
        }
    }
    let [nano, bare, bare_protocol] = times.map(CallTimes::of);
    Ok(ClientResults {
        nano,
        bare,
        bare_protocol,
    })
}

struct ClientResults {
    nano: CallTimes,
    bare: CallTimes,
    bare_protocol: CallTimes,
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
            eprintln!(
                "{} addr={addr} server=bare-axum",
                services::server::READY_PREFIX
            );
            let app = axum::Router::new()
                .route("/svc2/", post(svc2_handler))
                .route("/health-check", axum::routing::get(|| async {}));
            axum::serve(listener, app).await?;
            Ok(())
        })
    }
}
