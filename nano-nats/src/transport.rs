//! [`NatsTransport`]: one broker connection and its settings, shared by the clients and the
//! listener made from it.

use std::fmt;
use std::time::Duration;

use nano::{Api, NanoError, codes};

use crate::client::NatsClient;
use crate::listener::NatsListener;
use nano_wire::nats::check_subject_part;

use crate::protocol::DEFAULT_PREFIX;

/// The default limit on one call, from sending the request to receiving the reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default limit on establishing the connection to the broker.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default limit on the payload of a reply a client accepts: 16 MiB (the broker's own
/// `max_payload`, 1 MiB by default, is usually lower).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;
/// The longest wait between two attempts to reconnect to the broker.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// The default number of messages a subscription holds for its reader: requests waiting while
/// a listener is at its in-flight limit (and messages of any subscription made on
/// [`NatsTransport::nats`]). Past it the library drops messages (a slow consumer) and their
/// callers time out, so what a flood of requests can make a process hold is at most this many
/// messages of the broker's `max_payload` per subscription. (async-nats' own default is
/// 65,536.) Replies to a client's requests do not wait in a subscription.
pub const DEFAULT_PENDING_MESSAGES: usize = 1024;

/// A connection to a NATS broker and the settings of the calls made over it; makes
/// [`NatsClient`]s and the [`NatsListener`]. Cheap to clone; clones share the connection.
///
/// The connection reconnects by itself, forever, when the broker goes away (after 100 ms, then
/// up to [`MAX_RECONNECT_DELAY`] between attempts), and subscriptions are renewed when it is
/// back; while it is down, calls fail at once with `S-UNAVAILABLE`.
#[derive(Clone)]
pub struct NatsTransport {
    pub(crate) nats: async_nats::Client,
    pub(crate) prefix: String,
    pub(crate) timeout: Duration,
    pub(crate) max_response_bytes: usize,
    url: String,
}

impl NatsTransport {
    /// Connects to the broker at `url` (`nats://host:port`, or `host:port`) with default
    /// settings.
    ///
    /// # Errors
    ///
    /// As [`NatsTransportBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, NanoError> {
        Self::builder().connect(url).await
    }

    /// Starts configuring a transport.
    pub fn builder() -> NatsTransportBuilder {
        NatsTransportBuilder::default()
    }

    /// The underlying async-nats client, e.g. to publish or subscribe outside the protocol.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// The first token of every subject and queue group.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The broker address the transport connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A client for the service of a declared API: every request type it declares is sent to
    /// `<prefix>.<service>.<wire name>`.
    ///
    /// # Errors
    ///
    /// `S-INIT-FAILED` when the service name or a wire name cannot be part of a subject.
    pub fn api_client(&self, api: &'static Api) -> Result<NatsClient, NanoError> {
        NatsClient::new(self.clone(), api)
    }

    /// A listener that serves services of a set over this connection; see [`NatsListener`].
    pub fn listener(&self) -> NatsListener {
        NatsListener::new(self.clone())
    }
}

impl fmt::Debug for NatsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsTransport")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

/// Configures a [`NatsTransport`]; see [`NatsTransport::builder`].
#[derive(Debug, Clone)]
pub struct NatsTransportBuilder {
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
    max_response_bytes: usize,
    name: Option<String>,
    pending_messages: usize,
}

impl Default for NatsTransportBuilder {
    fn default() -> Self {
        NatsTransportBuilder {
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            name: None,
            pending_messages: DEFAULT_PENDING_MESSAGES,
        }
    }
}

impl NatsTransportBuilder {
    /// Sets the first token of every subject and queue group (default [`DEFAULT_PREFIX`]), so
    /// that several systems can share a broker. It may hold several tokens (`"prod.nano"`).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the limit on one call (default [`DEFAULT_TIMEOUT`]). A caller's deadline that comes
    /// sooner wins.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the limit on establishing the first connection, name lookup included (default
    /// [`DEFAULT_CONNECT_TIMEOUT`]).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the largest reply payload a client accepts (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`]); a larger one fails the call with `S-BAD-RESPONSE`.
    #[must_use]
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Sets how many messages each subscription holds for its reader (default
    /// [`DEFAULT_PENDING_MESSAGES`]; at least 1): the bound on requests waiting for a listener at
    /// its in-flight limit, past which they are dropped and their callers time out.
    #[must_use]
    pub fn pending_messages(mut self, messages: usize) -> Self {
        self.pending_messages = messages.max(1);
        self
    }

    /// Sets the connection name the broker shows in its monitoring (e.g. the server's name).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Connects to the broker at `url`.
    ///
    /// # Errors
    ///
    /// `S-INIT-FAILED` for a prefix that cannot start a subject or an address that is not one;
    /// `S-UNAVAILABLE` when the broker cannot be reached within the connect timeout.
    pub async fn connect(self, url: &str) -> Result<NatsTransport, NanoError> {
        check_subject_part("prefix", &self.prefix)?;
        let mut options = async_nats::ConnectOptions::new()
            .connection_timeout(self.connect_timeout)
            .subscription_capacity(self.pending_messages)
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
                (Duration::from_millis(100) * attempts).min(MAX_RECONNECT_DELAY)
            })
            .event_callback(|event| async move {
                // Connection state changes are rare and worth seeing; nothing from a request
                // reaches this line.
                tracing::info!(target: "nano_nats", %event, "broker connection");
            });
        if let Some(name) = &self.name {
            options = options.name(name);
        }
        // async-nats bounds each connection attempt but not the name lookup before it; the
        // whole first connection gets the connect timeout, so a bad address never hangs a
        // caller.
        let nats = match tokio::time::timeout(self.connect_timeout, options.connect(url)).await {
            Ok(connected) => connected.map_err(|err| {
                let code = match err.kind() {
                    async_nats::ConnectErrorKind::ServerParse => codes::INIT_FAILED,
                    _ => codes::UNAVAILABLE,
                };
                NanoError::wrap(err, format!("cannot connect to the NATS broker at {url}"))
                    .with_code(code)
            })?,
            Err(_elapsed) => {
                return Err(NanoError::unavailable(format!(
                    "cannot connect to the NATS broker at {url}: no connection within {:?}",
                    self.connect_timeout
                )));
            }
        };
        Ok(NatsTransport {
            nats,
            prefix: self.prefix,
            timeout: self.timeout,
            max_response_bytes: self.max_response_bytes,
            url: url.to_owned(),
        })
    }
}
