//! The client against a scripted raw TCP peer: which failed requests it sends again (only those
//! that provably never reached a handler), and the limit on an answer's size.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nano::{Client, Ctx, NanoError, codes};
use nano_http::HttpTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{ECHO, Echo, Echoed, bounded, endpoints};

/// What the peer does with one request it has read.
#[derive(Clone, Copy)]
enum Act {
    /// Writes these bytes and keeps the connection open.
    Answer(&'static str),
    /// Writes these bytes and closes the connection.
    Last(&'static str),
    /// Writes chunks of a chunked body without end.
    Endless(&'static str),
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"text\":\"ok\"}";
const REFUSED: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
    x-nano-not-processed: true\r\nconnection: close\r\ncontent-length: 46\r\n\r\n\
    {\"code\":\"S-UNAVAILABLE\",\"msg\":\"shutting down\"}";
const BARE_503: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
    connection: close\r\ncontent-length: 46\r\n\r\n\
    {\"code\":\"S-UNAVAILABLE\",\"msg\":\"shutting down\"}";

/// A peer that plays `script[i]` on its i-th connection, one act per request read; a request
/// past the end of a connection's script is read and the connection closed without an answer.
struct Peer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl Peer {
    async fn start(script: Vec<Vec<Act>>) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        tokio::spawn(async move {
            let mut script = script.into_iter();
            while let Ok((tcp, _)) = listener.accept().await {
                let acts = script.next().unwrap_or_default();
                tokio::spawn(play(tcp, acts, Arc::clone(&counter)));
            }
        });
        Peer { addr, requests }
    }

    fn client(&self, max_response_bytes: usize) -> Client {
        let transport = HttpTransport::builder()
            .max_response_bytes(max_response_bytes)
            .build()
            .unwrap();
        let client = transport
            .client_at(ECHO, &self.addr.to_string(), endpoints())
            .unwrap();
        let set = nano::ServiceSet::builder().service(client).build().unwrap();
        set.client("test", ECHO).unwrap()
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn play(mut tcp: TcpStream, acts: Vec<Act>, requests: Arc<AtomicUsize>) {
    let mut acts = acts.into_iter();
    loop {
        if !read_request(&mut tcp).await {
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        match acts.next() {
            Some(Act::Answer(bytes)) => {
                if tcp.write_all(bytes.as_bytes()).await.is_err() {
                    return;
                }
            }
            Some(Act::Last(bytes)) => {
                let _ = tcp.write_all(bytes.as_bytes()).await;
                return;
            }
            Some(Act::Endless(head)) => {
                let _ = tcp.write_all(head.as_bytes()).await;
                let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
                while tcp.write_all(chunk.as_bytes()).await.is_ok() {}
                return;
            }
            None => return,
        }
    }
}

/// Reads one request (head and `Content-Length` body); false at the end of the connection.
async fn read_request(tcp: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf.len() - end - 4;
    while body < len {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => body += n,
        }
    }
    true
}

async fn call(client: &Client) -> Result<Echoed, NanoError> {
    bounded(client.call(&Ctx::new(), Echo { text: "x".into() })).await
}

#[tokio::test]
async fn a_request_lost_on_a_reused_connection_before_any_answer_is_sent_again() {
    // The first connection answers once, then closes on the next request without a byte.
    let peer = Peer::start(vec![vec![Act::Answer(OK)], vec![Act::Answer(OK)]]).await;
    let client = peer.client(1 << 20);
    assert_eq!(call(&client).await.unwrap().text, "ok");
    assert_eq!(call(&client).await.unwrap().text, "ok");
    assert_eq!(peer.requests(), 3);
}

#[tokio::test]
async fn a_request_lost_on_a_fresh_connection_is_not_sent_again() {
    let peer = Peer::start(vec![vec![], vec![Act::Answer(OK)]]).await;
    let err = call(&peer.client(1 << 20)).await.unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE, "{err}");
    assert_eq!(peer.requests(), 1);
}

#[tokio::test]
async fn a_request_cut_off_in_the_middle_of_its_answer_is_not_sent_again() {
    let partial = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-le";
    let peer = Peer::start(vec![
        vec![Act::Answer(OK), Act::Last(partial)],
        vec![Act::Answer(OK)],
    ])
    .await;
    let client = peer.client(1 << 20);
    call(&client).await.unwrap();
    let err = call(&client).await.unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE, "{err}");
    assert_eq!(peer.requests(), 2);
}

#[tokio::test]
async fn a_refusal_marked_not_processed_is_sent_again_once() {
    let peer = Peer::start(vec![vec![Act::Last(REFUSED)], vec![Act::Answer(OK)]]).await;
    assert_eq!(call(&peer.client(1 << 20)).await.unwrap().text, "ok");
    assert_eq!(peer.requests(), 2);

    let peer = Peer::start(vec![
        vec![Act::Last(REFUSED)],
        vec![Act::Last(REFUSED)],
        vec![Act::Answer(OK)],
    ])
    .await;
    let err = call(&peer.client(1 << 20)).await.unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE);
    assert!(
        err.to_string().contains("refused the request twice"),
        "{err}"
    );
    assert_eq!(peer.requests(), 2);
}

#[tokio::test]
async fn a_503_without_the_marker_is_not_sent_again() {
    let peer = Peer::start(vec![vec![Act::Last(BARE_503)], vec![Act::Answer(OK)]]).await;
    let err = call(&peer.client(1 << 20)).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (codes::UNAVAILABLE, "shutting down")
    );
    assert_eq!(peer.requests(), 1);
}

#[tokio::test]
async fn an_answer_over_the_limit_is_a_bad_response() {
    let declared =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1001\r\n\r\n";
    let peer = Peer::start(vec![vec![Act::Last(declared)]]).await;
    let err = call(&peer.client(1000)).await.unwrap_err();
    assert_eq!(err.code(), codes::BAD_RESPONSE);
    assert!(err.to_string().contains("larger than 1000 bytes"), "{err}");

    let chunked =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let peer = Peer::start(vec![vec![Act::Endless(chunked)]]).await;
    let err = call(&peer.client(1 << 20)).await.unwrap_err();
    assert_eq!(err.code(), codes::BAD_RESPONSE);
    assert!(
        err.to_string().contains("larger than 1048576 bytes"),
        "{err}"
    );

    // At the limit exactly is fine.
    let peer = Peer::start(vec![vec![Act::Answer(OK)]]).await;
    assert_eq!(call(&peer.client(13)).await.unwrap().text, "ok");
}
