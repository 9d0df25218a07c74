//! A process keeps a bounded number of caller → callee pairs: caller names come from peers (a
//! listener makes a client for the name each request gives), so memory must not grow with
//! what they send. Its own test binary, because the pairs are the process's.

use nano::{Ctx, Request, ServiceSet};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct WhoCalls;

impl Request for WhoCalls {
    type Response = String;
    const NAME: &'static str = "edges.WhoCalls";
}

#[tokio::test]
async fn past_four_thousand_callers_a_new_caller_is_named_other_and_known_ones_keep_their_names() {
    let callee = nano_test::request_fn("callee", |ctx: Ctx, _: WhoCalls| async move {
        Ok(ctx.caller().unwrap_or_default().to_owned())
    });
    let set = ServiceSet::builder().service(callee).build().unwrap();
    let caller_seen = |caller: String| {
        let client = set.client(&caller, "callee").unwrap();
        async move { client.call(&Ctx::new(), WhoCalls).await.unwrap() }
    };
    assert_eq!(caller_seen("peer-0".into()).await, "peer-0");
    for i in 1..5_000 {
        let seen = caller_seen(format!("peer-{i}")).await;
        assert!(
            seen == format!("peer-{i}") || seen == "[other caller]",
            "{seen}"
        );
    }
    // The process kept at most 4,096 pairs: the last of 5,000 callers got the shared name.
    assert_eq!(caller_seen("peer-4999".into()).await, "[other caller]");
    assert_eq!(caller_seen("a newcomer".into()).await, "[other caller]");
    // Callers known before the bound keep their names.
    assert_eq!(caller_seen("peer-0".into()).await, "peer-0");
    assert_eq!(caller_seen("peer-100".into()).await, "peer-100");
}
