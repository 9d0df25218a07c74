//! `test_client`: calls svc2 over HTTP once, prints the response as JSON on stdout, and exits
//! non-zero on error. See `--help`.

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
    about = "Calls svc2 over HTTP once, prints the response as JSON on stdout and exits 1 on error.",
    after_help = "svc2 is called at 127.0.0.1:8000 unless --peer svc2=ADDR (or NANO_PEERS) says otherwise."
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
    let mut peers = args.remote.peers();
    if peers.get(svc2::NAME).is_none() {
        peers.insert(svc2::NAME, DEFAULT_SVC2)?;
    }
    let transport = nano_http::HttpTransport::builder()
        .peers(peers)
        .timeout(args.remote.timeout)
        .build()?;
    let svc2_client = transport.api_client(&svc2::API)?;
    let set = nano::ServiceSet::builder().service(svc2_client).build()?;
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
