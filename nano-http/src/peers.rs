//! [`Peers`]: static discovery, a map from service name to the address that serves it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use nano::NanoError;
use url::Url;

/// The environment variable the server executables read peers from, as a [`Peers`] list.
pub const PEERS_ENV: &str = "NANO_PEERS";

/// Where remote services live: service name → base URL.
///
/// An address is `host:port` or `http://host:port` (optionally with a path prefix). Lists are
/// written `NAME=ADDR,NAME=ADDR`, which is also the format of the `NANO_PEERS` environment
/// variable and of repeated `--peer NAME=ADDR` flags.
///
/// ```
/// use nano_http::Peers;
///
/// let mut peers: Peers = "svc3=127.0.0.1:8001, svc4=http://localhost:8002/".parse()?;
/// peers.insert("svc1", "127.0.0.1:8003")?;
/// assert_eq!(peers.get("svc3"), Some("http://127.0.0.1:8001"));
/// assert_eq!(peers.get("svc4"), Some("http://localhost:8002"));
/// assert_eq!(peers.len(), 3);
/// assert!("svc3".parse::<Peers>().is_err());
/// # Ok::<(), nano::NanoError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Peers {
    by_name: BTreeMap<String, String>,
}

impl Peers {
    /// No peers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the address of `service`, replacing an earlier one.
    ///
    /// # Errors
    ///
    /// `C-BAD-REQUEST` when the name is empty or the address is not an `http` address.
    pub fn insert(&mut self, service: &str, address: &str) -> Result<(), NanoError> {
        let peer = Peer::new(service, address)?;
        self.by_name.insert(peer.name, peer.base_url);
        Ok(())
    }

    /// Adds one peer, replacing an earlier address of the same service.
    pub fn add(&mut self, peer: Peer) {
        self.by_name.insert(peer.name, peer.base_url);
    }

    /// The base URL of `service` (`http://host:port`, no trailing slash).
    pub fn get(&self, service: &str) -> Option<&str> {
        self.by_name.get(service).map(String::as_str)
    }

    /// Every peer, sorted by service name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_name.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of peers.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether there are no peers.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

impl FromStr for Peers {
    type Err = NanoError;

    /// Parses `NAME=ADDR,NAME=ADDR`; blanks around items are ignored and an empty string is no
    /// peers.
    fn from_str(list: &str) -> Result<Self, NanoError> {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::parse::<Peer>)
            .collect()
    }
}

impl FromIterator<Peer> for Peers {
    fn from_iter<I: IntoIterator<Item = Peer>>(peers: I) -> Self {
        let mut all = Peers::new();
        all.extend(peers);
        all
    }
}

impl Extend<Peer> for Peers {
    fn extend<I: IntoIterator<Item = Peer>>(&mut self, peers: I) {
        for peer in peers {
            self.add(peer);
        }
    }
}

impl fmt::Debug for Peers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl fmt::Display for Peers {
    /// The `NAME=ADDR,NAME=ADDR` form [`FromStr`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, url)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{name}={url}")?;
        }
        Ok(())
    }
}

/// One `NAME=ADDR` entry of [`Peers`]; what a `--peer` flag parses into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    name: String,
    base_url: String,
}

impl Peer {
    /// A peer: `service` is served at `address` (`host:port` or `http://host:port[/prefix]`).
    ///
    /// # Errors
    ///
    /// `C-BAD-REQUEST` when the name is empty or the address is not an `http` address.
    pub fn new(service: &str, address: &str) -> Result<Self, NanoError> {
        let service = service.trim();
        if service.is_empty() || service.contains('/') {
            return Err(NanoError::bad_request(format!(
                "invalid peer service name {service:?}"
            )));
        }
        Ok(Peer {
            name: service.to_owned(),
            base_url: base_url(address.trim())?,
        })
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

impl FromStr for Peer {
    type Err = NanoError;

    /// Parses `NAME=ADDR`.
    fn from_str(text: &str) -> Result<Self, NanoError> {
        let (name, address) = text.split_once('=').ok_or_else(|| {
            NanoError::bad_request(format!(
                "invalid peer {text:?}, expected NAME=ADDR (e.g. svc3=127.0.0.1:8001)"
            ))
        })?;
        Peer::new(name, address)
    }
}

/// Normalises an address into a base URL: adds `http://` when there is no scheme, rejects other
/// schemes (this transport speaks plain HTTP; TLS is terminated in front of it), drops a trailing
/// slash.
fn base_url(address: &str) -> Result<String, NanoError> {
    let with_scheme = if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    let invalid =
        |why: String| NanoError::bad_request(format!("invalid peer address {address:?}: {why}"));
    let url = Url::parse(&with_scheme).map_err(|err| invalid(err.to_string()))?;
    if url.scheme() != "http" {
        return Err(invalid(format!(
            "scheme {:?} is not supported, only http",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a query or fragment is not allowed".into()));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_to_base_urls() {
        let url = |addr: &str| {
            Peer::new("svc", addr)
                .map(|p| p.base_url)
                .map_err(|e| e.to_string())
        };
        assert_eq!(url("127.0.0.1:8000").unwrap(), "http://127.0.0.1:8000");
        assert_eq!(url("http://[::1]:80/").unwrap(), "http://[::1]");
        assert_eq!(url("http://host:9/api/").unwrap(), "http://host:9/api");
        assert!(url("https://host:9").unwrap_err().contains("only http"));
        assert!(
            url("host:notaport")
                .unwrap_err()
                .contains("invalid peer address")
        );
        assert!(url("http://host/?q=1").unwrap_err().contains("query"));
    }

    #[test]
    fn lists_parse_and_print_the_same_way() {
        let peers: Peers = " svc3=127.0.0.1:1 ,, svc4=127.0.0.1:2".parse().unwrap();
        assert_eq!(
            peers.to_string(),
            "svc3=http://127.0.0.1:1,svc4=http://127.0.0.1:2"
        );
        assert_eq!(peers.to_string().parse::<Peers>().unwrap(), peers);
        assert!("".parse::<Peers>().unwrap().is_empty());
        let err = "svc3".parse::<Peers>().unwrap_err();
        assert_eq!(err.code(), nano::codes::BAD_REQUEST);
        assert!(err.to_string().contains("NAME=ADDR"), "{err}");
        assert!("=127.0.0.1:1".parse::<Peer>().is_err());
    }
}
