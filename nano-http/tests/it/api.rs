//! Declared APIs over HTTP: the endpoint table comes from the declaration, so what a service
//! handles and what its listener and clients expose cannot disagree silently.

use nano::{Ctx, NanoError, ServiceSet, codes};
use nano_http::{Endpoint, HttpListener, HttpTransport, Method, Peers};
use nano_server::Listener;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Put {
    pub(crate) key: String,
}
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Stored {
    pub(crate) key: String,
}
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Count {}
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Compact {}
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Replace {}
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Typo {}

mod store {
    use super::*;
    nano::api! {
        service "store";
        fn put(Put) -> Stored = "store.Put", POST "/";
        fn count(Count) -> Stored = "store.Count", GET "/count";
        /// Maintenance, not reachable over HTTP.
        fn compact(Compact) -> () = "store.Compact";
    }
}

mod impostor {
    use super::*;
    nano::api! {
        // Another declaration under the same service name.
        service "store";
        fn replace(Replace) -> Stored = "impostor.Replace", PUT "/";
    }
}

mod broken {
    use super::*;
    nano::api! {
        service "broken";
        // HTTP methods are case-sensitive: this would be an extension method, not POST.
        fn typo(Typo) -> Stored = "broken.Typo", post "/";
    }
}

struct Store;

impl store::Handler for Store {
    async fn put(&self, _ctx: &Ctx, req: Put) -> Result<Stored, NanoError> {
        Ok(Stored { key: req.key })
    }
    async fn count(&self, _ctx: &Ctx, _req: Count) -> Result<Stored, NanoError> {
        Ok(Stored { key: "1".into() })
    }
    async fn compact(&self, _ctx: &Ctx, _req: Compact) -> Result<(), NanoError> {
        Ok(())
    }
}

fn store_set() -> ServiceSet {
    ServiceSet::builder()
        .service(store::service(|_| Ok(Store)))
        .build()
        .unwrap()
}

#[test]
fn the_endpoint_table_is_derived_from_the_routes() {
    let table = Endpoint::table(&store::API).unwrap();
    let rows: Vec<_> = table
        .iter()
        .map(|e| {
            (
                e.method(),
                e.url_path("store"),
                e.has_body(),
                e.has_response(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (Method::POST, "/store/".to_owned(), true, true),
            (Method::GET, "/store/count".to_owned(), false, true),
        ]
    );
}

#[test]
fn a_route_with_an_invalid_method_is_refused() {
    let err = Endpoint::table(&broken::API).unwrap_err();
    assert_eq!(err.code(), codes::INIT_FAILED);
    assert!(err.to_string().contains(r#"broken.Typo of service "broken" is declared with "post", which is not an upper-case HTTP method"#), "{err}");
}

#[tokio::test]
async fn every_routed_operation_is_served_and_called_and_the_rest_is_refused() {
    let listener = HttpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .expose_api(&store::API)
        .unwrap();
    let addr = listener.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(nano_server::serve_until(
        store_set(),
        vec![listener.boxed()],
        async {
            let _ = stopped.await;
        },
    ));

    let transport = HttpTransport::new(Peers::new()).unwrap();
    let client = transport
        .api_client_at(&store::API, &addr.to_string())
        .unwrap();
    let callers = ServiceSet::builder().service(client).build().unwrap();
    assert!(std::ptr::eq(callers.api("store").unwrap(), &store::API));
    let store = callers.client("test", "store").unwrap();
    let put = store
        .call(&Ctx::new(), Put { key: "k".into() })
        .await
        .unwrap();
    assert_eq!(put.key, "k");
    let count = store.call(&Ctx::new(), Count {}).await.unwrap();
    assert_eq!(count.key, "1");
    // Declared without a route: the HTTP client refuses it instead of guessing an endpoint.
    let err = store.call(&Ctx::new(), Compact {}).await.unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST_TYPE);

    let status = reqwest::Client::new()
        .post(format!("http://{addr}/store/compact"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_listener_refuses_to_expose_an_api_its_service_does_not_declare() {
    let listener = HttpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .expose_api(&impostor::API)
        .unwrap();
    let err = nano_server::serve_until(store_set(), vec![listener.boxed()], async {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::INIT_FAILED);
    assert!(
        err.to_string()
            .contains(r#"exposes an API of service "store" other than the one its service in the set declares"#),
        "{err}"
    );
}
