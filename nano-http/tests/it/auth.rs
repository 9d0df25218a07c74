//! The listener's edge authentication against a plain HTTP client: tokens missing, malformed,
//! refused, forbidden and good; the auth service failing or absent; nothing read or logged that
//! should not be.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nano::{AnyRequest, Ctx, ErrorBody, NanoError, Outcome, Service, ServiceSet, codes};
use nano_http::{Endpoint, HttpListener};
use nano_server::Listener;
use nano_wire::{AuthQuery, EdgeAuth};
use serde::{Deserialize, Serialize};

use crate::support::{Server, bounded};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Verify {
    token: String,
    request: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Verified {
    user: String,
}

impl nano::Request for Verify {
    type Response = Verified;
    const NAME: &'static str = "gate.Verify";
}

/// Protected: answers who the edge said the caller is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Whoami {
    note: String,
}

/// Not protected.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Open {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Seen {
    user: Option<String>,
}

impl nano::Request for Whoami {
    type Response = Seen;
    const NAME: &'static str = "desk.Whoami";
}

impl nano::Request for Open {
    type Response = Seen;
    const NAME: &'static str = "desk.Open";
}

/// The auth service: `t-ada` may do anything, `t-guest` nothing, `t-down` finds it down,
/// `t-odd` gets a client error that is not an auth code; every other token is unknown.
struct Gate {
    asked: Arc<AtomicUsize>,
}

impl Service for Gate {
    fn name(&self) -> &str {
        "gate"
    }

    async fn handle(&self, _ctx: Ctx, req: AnyRequest) -> Outcome {
        self.asked.fetch_add(1, Ordering::SeqCst);
        nano::dispatch!(req, {
            Verify => |r| match r.token.as_str() {
                "t-ada" => Ok(Verified { user: "ada".into() }),
                "t-nobody" => Ok(Verified { user: String::new() }),
                "t-guest" => Err(NanoError::new(
                    nano_wire::codes::FORBIDDEN,
                    format!("guests may not call {}", r.request),
                )),
                "t-down" => Err(NanoError::unavailable("the token store is down")),
                "t-odd" => Err(NanoError::bad_request("odd token")),
                _ => Err(NanoError::new(nano_wire::codes::UNAUTHORIZED, "unknown token")),
            },
        })
    }
}

struct Desk;

impl Service for Desk {
    fn name(&self) -> &str {
        "desk"
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let seen = Seen {
            user: ctx.metadata("user").map(str::to_owned),
        };
        nano::dispatch!(req, {
            Whoami => |_| Ok(seen.clone()),
            Open => |_| Ok(seen.clone()),
        })
    }
}

fn edge() -> EdgeAuth {
    EdgeAuth::new(
        "gate",
        |q: AuthQuery| Verify {
            token: q.token,
            request: q.request,
        },
        |v: Verified| v.user,
    )
    .protect::<Whoami>()
}

fn desk_endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post::<Whoami>("/me"),
        Endpoint::post::<Open>("/open"),
    ]
}

async fn start(asked: &Arc<AtomicUsize>, body_limit: usize) -> Server {
    let set = ServiceSet::builder()
        .service(Gate {
            asked: Arc::clone(asked),
        })
        .service(Desk)
        .build()
        .unwrap();
    Server::start_with(set, |listener| {
        listener
            .expose("desk", desk_endpoints())
            .unwrap()
            .body_limit(body_limit)
            .auth(edge())
    })
    .await
}

/// Status and body of a POST with `authorization`.
async fn post(
    server: &Server,
    path: &str,
    authorization: Option<&str>,
    body: &str,
) -> (u16, String) {
    let (status, _, body) = post_with(server, path, authorization.as_slice(), body).await;
    (status, body)
}

/// Status, `WWW-Authenticate` and body of a POST with one `Authorization` header per value.
async fn post_with(
    server: &Server,
    path: &str,
    authorization: &[&str],
    body: &str,
) -> (u16, Option<String>, String) {
    let mut request = reqwest::Client::new()
        .post(server.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for value in authorization {
        // Appends: each value is a header of its own.
        request = request.header("authorization", *value);
    }
    let answer = request.send().await.unwrap();
    let challenges: Vec<String> = answer
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(challenges.len() <= 1, "{challenges:?}");
    let status = answer.status().as_u16();
    (
        status,
        challenges.into_iter().next(),
        answer.text().await.unwrap(),
    )
}

const NO_TOKEN: Option<&str> = Some(r#"Bearer realm="nano""#);
const INVALID_REQUEST: Option<&str> = Some(r#"Bearer realm="nano", error="invalid_request""#);
const INVALID_TOKEN: Option<&str> = Some(r#"Bearer realm="nano", error="invalid_token""#);

fn error(body: &str) -> ErrorBody {
    serde_json::from_str(body).unwrap_or_else(|err| panic!("not an error body ({err}): {body}"))
}

#[tokio::test]
async fn a_protected_endpoint_answers_by_the_token() {
    let asked = Arc::new(AtomicUsize::new(0));
    let server = start(&asked, 1 << 20).await;

    let (status, body) = post(&server, "/desk/me", Some("Bearer t-ada"), "{}").await;
    assert_eq!((status, body.as_str()), (200, r#"{"user":"ada"}"#));
    assert_eq!(asked.load(Ordering::SeqCst), 1);

    let cases = [
        (None, "needs a bearer token", NO_TOKEN),
        (Some(""), "the Authorization header is empty", NO_TOKEN),
        (Some("Basic dDphZGE="), "another scheme", INVALID_REQUEST),
        (Some("Bearer "), "no token", INVALID_REQUEST),
        (Some("Bearer t ada"), "characters", INVALID_REQUEST),
    ];
    for (authorization, fragment, challenge) in cases {
        let (got, www, body) = post_with(&server, "/desk/me", authorization.as_slice(), "{}").await;
        let body = error(&body);
        assert_eq!(
            (got, body.code.as_str(), www.as_deref()),
            (401, "C-UNAUTHORIZED", challenge),
            "{authorization:?}: {body:?}"
        );
        assert!(body.msg.contains(fragment), "{authorization:?}: {body:?}");
    }
    // A malformed header never reaches the auth service.
    assert_eq!(asked.load(Ordering::SeqCst), 1);

    let cases = [
        (
            "Bearer t-who",
            401,
            "C-UNAUTHORIZED",
            "unknown token",
            INVALID_TOKEN,
        ),
        (
            "Bearer t-odd",
            401,
            "C-UNAUTHORIZED",
            "the token was refused :: odd token",
            INVALID_TOKEN,
        ),
        (
            "Bearer t-nobody",
            401,
            "C-UNAUTHORIZED",
            "the auth service accepted the token but named no user",
            INVALID_TOKEN,
        ),
        (
            "Bearer t-guest",
            403,
            "C-FORBIDDEN",
            "guests may not call desk.Whoami",
            None,
        ),
        (
            "Bearer t-down",
            500,
            "S-UNAVAILABLE",
            "cannot authenticate the request :: the token store is down",
            None,
        ),
    ];
    for (authorization, status, code, message, challenge) in cases {
        let (got, www, body) = post_with(&server, "/desk/me", &[authorization], "{}").await;
        let body = error(&body);
        assert_eq!(
            (got, body.code.as_str(), www.as_deref()),
            (status, code, challenge),
            "{authorization}: {body:?}"
        );
        assert_eq!(body.msg, message, "{authorization}");
    }
    assert_eq!(asked.load(Ordering::SeqCst), 6);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn more_than_one_authorization_header_is_refused_here_and_in_process_alike() {
    let asked = Arc::new(AtomicUsize::new(0));
    let server = start(&asked, 1 << 20).await;
    for values in [
        &["Bearer t-ada", "Bearer t-who"][..],
        &["Bearer t-who", "Bearer t-ada"],
        &["Bearer t-ada", "Bearer t-ada"],
        &["Bearer t-ada", ""],
    ] {
        let (status, www, body) = post_with(&server, "/desk/me", values, "{}").await;
        let body = error(&body);
        assert_eq!(
            (
                status,
                body.code.as_str(),
                body.msg.as_str(),
                www.as_deref()
            ),
            (
                401,
                "C-UNAUTHORIZED",
                "more than one Authorization header",
                INVALID_REQUEST
            ),
            "{values:?}"
        );
    }
    // Decided before the auth service is asked.
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    // An open endpoint does not look at them.
    let (status, www, _) = post_with(
        &server,
        "/desk/open",
        &["Bearer t-ada", "Bearer t-who"],
        "{}",
    )
    .await;
    assert_eq!((status, www), (200, None));
    server.stop().await.unwrap();

    // The in-process edge decides with the same function: one value is one header, and what it
    // answers a header that reaches the HTTP edge alone is what the listener answers.
    let set = ServiceSet::builder()
        .service(Gate {
            asked: Arc::clone(&asked),
        })
        .service(Desk)
        .build()
        .unwrap();
    let twice: &[&[u8]] = &[b"Bearer t-ada", b"Bearer t-who"];
    let refused = edge()
        .admit(&set, Ctx::new(), "desk", "desk.Whoami", twice)
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        ("C-UNAUTHORIZED", "more than one Authorization header")
    );
    let t = nano_test::TestSet::builder()
        .service(Gate { asked })
        .service(Desk)
        .edge_auth(edge())
        .build()
        .unwrap();
    let empty = t
        .call_at_edge(Some(""), "desk", Whoami::default())
        .await
        .unwrap_err();
    assert!(
        empty
            .message()
            .starts_with("the Authorization header is empty"),
        "{empty}"
    );
}

#[tokio::test]
async fn an_open_endpoint_needs_no_token_and_ignores_one() {
    let asked = Arc::new(AtomicUsize::new(0));
    let server = start(&asked, 1 << 20).await;
    for authorization in [None, Some("Bearer t-ada"), Some("Basic junk")] {
        let (status, body) = post(&server, "/desk/open", authorization, "{}").await;
        // The identity comes from the edge only, and the edge does not run here.
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"user":null}"#),
            "{authorization:?}"
        );
    }
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_unauthenticated_request_is_refused_before_its_body_is_read() {
    let asked = Arc::new(AtomicUsize::new(0));
    let server = start(&asked, 16).await;
    let big = format!(r#"{{"note":"{}"}}"#, "x".repeat(64));
    let (status, body) = post(&server, "/desk/me", None, &big).await;
    assert_eq!(
        (status, error(&body).code.as_str()),
        (401, "C-UNAUTHORIZED")
    );
    // Authenticated, the same body meets the limit.
    let (status, body) = post(&server, "/desk/me", Some("Bearer t-ada"), &big).await;
    assert_eq!(
        (status, error(&body).code.as_str()),
        (413, codes::PAYLOAD_TOO_LARGE)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_listener_without_its_auth_service_does_not_start() {
    let set = ServiceSet::builder().service(Desk).build().unwrap();
    let listener = HttpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .expose("desk", desk_endpoints())
        .unwrap()
        .auth(edge());
    let err = bounded(nano_server::serve_until(
        set,
        vec![listener.boxed()],
        std::future::pending(),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.code(), codes::UNKNOWN_SERVICE);
    assert!(err.to_string().contains("\"gate\""), "{err}");

    // Exposing nothing protected, it needs none.
    let set = ServiceSet::builder().service(Desk).build().unwrap();
    let listener = HttpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .expose("desk", [Endpoint::post::<Open>("/open")])
        .unwrap()
        .auth(edge());
    let server = Server::start_with(set, |_| listener).await;
    let (status, _) = post(&server, "/desk/open", None, "{}").await;
    assert_eq!(status, 200);
    server.stop().await.unwrap();
}
