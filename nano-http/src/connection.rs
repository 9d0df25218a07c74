//! The client's connections, instrumented to tell when a failed request provably never reached
//! the server's handler: it was sent on a reused keep-alive connection that the server closed
//! before sending a single byte of its answer (the server closed an idle connection just as the
//! request went out, the race every HTTP/1.1 keep-alive client has).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use http::{Extensions, Uri};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What a connection has seen of its current exchange; shared between the stream and the
/// errors and responses of requests sent on it.
#[derive(Debug, Default)]
pub(crate) struct Exchange {
    /// Whether the connection had read an answer before the current request was written.
    reused: AtomicBool,
    /// Bytes read since the current request started.
    answered: AtomicU64,
    /// Bytes read over the connection's life.
    total: AtomicU64,
}

/// The handle on a connection's [`Exchange`] that its `Connected` info carries.
#[derive(Debug, Clone)]
pub(crate) struct ExchangeInfo(Arc<Exchange>);

impl ExchangeInfo {
    /// Whether the request that failed on the connection `connected` describes was sent on a
    /// reused connection and got no byte of an answer.
    pub(crate) fn unanswered_on_reused(connected: Option<&Connected>) -> bool {
        let Some(connected) = connected else {
            return false;
        };
        let mut extensions = Extensions::new();
        connected.get_extras(&mut extensions);
        extensions.get::<ExchangeInfo>().is_some_and(|info| {
            info.0.reused.load(Ordering::Acquire) && info.0.answered.load(Ordering::Acquire) == 0
        })
    }
}

/// A TCP stream that keeps its [`Exchange`] up to date: a write after a read starts a new
/// exchange (HTTP/1.1 without pipelining writes a request only after the previous answer).
pub(crate) struct TrackedStream {
    tcp: TcpStream,
    exchange: Arc<Exchange>,
    read_last: bool,
}

impl TrackedStream {
    fn new(tcp: TcpStream) -> Self {
        TrackedStream {
            tcp,
            exchange: Arc::default(),
            read_last: true,
        }
    }

    fn start_writing(&mut self) {
        if self.read_last {
            self.read_last = false;
            let e = &self.exchange;
            e.reused
                .store(e.total.load(Ordering::Acquire) > 0, Ordering::Release);
            e.answered.store(0, Ordering::Release);
        }
    }
}

impl Connection for TrackedStream {
    fn connected(&self) -> Connected {
        self.tcp
            .connected()
            .extra(ExchangeInfo(Arc::clone(&self.exchange)))
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.tcp).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        if read > 0 {
            this.read_last = true;
            this.exchange.answered.fetch_add(read, Ordering::AcqRel);
            this.exchange.total.fetch_add(read, Ordering::AcqRel);
        }
        polled
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.start_writing();
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.start_writing();
        Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// hyper-util's connector, handing out [`TrackedStream`]s.
#[derive(Clone)]
pub(crate) struct TrackingConnector(pub(crate) HttpConnector);

type Connecting = Pin<Box<dyn Future<Output = Result<TokioIo<TrackedStream>, BoxError>> + Send>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for TrackingConnector {
    type Response = TokioIo<TrackedStream>;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let io = connecting.await?;
            Ok(TokioIo::new(TrackedStream::new(io.into_inner())))
        })
    }
}
