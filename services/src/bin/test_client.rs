//! `test_client`: calls svc2 over HTTP (or with `--nats URL` over a NATS broker) once, prints
//! the response as JSON on stdout, and exits non-zero on error. See `--help`.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use nano::{Ctx, NanoError};
use nano_http::server::PeerArgs;
use services::api::svc2;

/// The address svc2 is called at when no `--peer svc2=ADDR` is given: the servers' default.
const DEFAULT_SVC2: &str = "127.0.0.1:8000";

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RequestKind {
    /// `POST /svc2/` with `{"param": PARAM}`; answers `svc2_svc1_PARAM`.
    Req,
    /// `GET /svc2/`; answers `svc2_svc3_svc4_getparam`.
    Getreq,
}

#[derive(Debug, Parser)]
#[command(
    name = "test_client",
    about = "Calls svc2 over HTTP (or NATS) once, prints the response as JSON on stdout and exits 1 on error.",
    after_help = "svc2 is called at 127.0.0.1:8000 unless --peer svc2=ADDR (or NANO_PEERS) says otherwise, or over the broker with --nats URL (or NANO_NATS)."
)]
struct Args {
    /// Which request to send.
    #[arg(long, value_enum, default_value = "req")]
    req: RequestKind,

    /// The param of a `req` request.
    #[arg(long, default_value = "testval")]
    param: String,

    #[command(flatten)]
    remote: PeerArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    nano_http::server::init_tracing();
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| NanoError::wrap(err, "cannot start the async runtime"))
        .and_then(|runtime| runtime.block_on(call(&args)));
    match outcome {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("test_client: error {}: {err}", printable_code(&err));
            ExitCode::FAILURE
        }
    }
}

fn printable_code(err: &NanoError) -> &str {
    if err.code().is_empty() {
        "(uncoded)"
    } else {
        err.code()
    }
}

async fn call(args: &Args) -> Result<String, NanoError> {
    let mut remote = args.remote.clone();
    // Over NATS the broker finds svc2; over HTTP it is at the servers' default address unless
    // a peer says otherwise.
    if remote.nats.is_none() && !remote.peers.iter().any(|p| p.name() == svc2::NAME) {
        remote
            .peers
            .push(nano_http::Peer::new(svc2::NAME, DEFAULT_SVC2)?);
    }
    let remote = remote.connect(&services::system(), "test_client").await?;
    let set = nano::ServiceSet::builder()
        .shared(remote.api_client(&svc2::API)?)
        .build()?;
    let svc2 = set.client("test_client", svc2::NAME)?;
    let ctx = Ctx::new();
    let json = match args.req {
        RequestKind::Req => {
            let req = svc2::Req {
                param: args.param.clone(),
            };
            serde_json::to_string(&svc2.call(&ctx, req).await?)
        }
        RequestKind::Getreq => serde_json::to_string(&svc2.call(&ctx, svc2::GetReq {}).await?),
    };
    json.map_err(|err| NanoError::wrap(err, "cannot print the response"))
}
