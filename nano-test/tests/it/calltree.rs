//! The call-tree recorder: parents and children, concurrency, stacked recorders, unfinished calls.

use std::time::Duration;

use nano::{AnyRequest, Client, Ctx, Dependencies, NanoError, Outcome, Service, ServiceSet, codes};
use nano_test::request_fn;
use nano_test::{CallOutcome, CallRecorder, TestSet};
use services::api::{svc1, svc4};

/// Calls svc1 and svc4 concurrently for every request.
#[derive(Default)]
struct FanOut {
    svc1: Option<Client>,
    svc4: Option<Client>,
}

impl Service for FanOut {
    fn name(&self) -> &str {
        "fanout"
    }

    fn init(&mut self, deps: &mut Dependencies<'_>) -> Result<(), NanoError> {
        self.svc1 = Some(deps.client(svc1::NAME)?);
        self.svc4 = Some(deps.client(svc4::NAME)?);
        Ok(())
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let (Some(svc1), Some(svc4)) = (&self.svc1, &self.svc4) else {
            return Err(NanoError::internal("not initialised"));
        };
        nano::dispatch!(req, {
            svc1::Req => |r| {
                let (a, b) = tokio::join!(
                    svc1.call(&ctx, svc1::Req { param: r.param.clone() }),
                    svc4.call(&ctx, svc4::Req { param: r.param }),
                );
                Ok(svc1::Resp { value: format!("{}+{}", a?.value, b?.value) })
            },
        })
    }
}

#[tokio::test]
async fn concurrent_calls_are_children_of_the_call_that_made_them() {
    let t = TestSet::builder()
        .service(FanOut::default())
        .service(services::svc1::service())
        .service(services::svc4::service())
        .build()
        .unwrap();
    let resp = t
        .call("fanout", svc1::Req { param: "p".into() })
        .await
        .unwrap();
    assert_eq!(resp.value, "svc1_p+svc4_p");
    let tree = t.last_call_tree().unwrap();
    let edges: Vec<String> = tree
        .iter()
        .map(|node| format!("{} -> {}", node.caller, node.service))
        .collect();
    assert_eq!(
        edges,
        ["test -> fanout", "fanout -> svc1", "fanout -> svc4"]
    );
    assert_eq!(t.call_trees().len(), 1);
    assert_eq!(
        tree.to_string(),
        "test -> fanout svc1.Req {\"param\":\"p\"} => response {\"value\":\"svc1_p+svc4_p\"}\n  \
         fanout -> svc1 svc1.Req {\"param\":\"p\"} => response {\"value\":\"svc1_p\"}\n  \
         fanout -> svc4 svc4.Req {\"param\":\"p\"} => response {\"value\":\"svc4_p\"}\n"
    );
}

#[tokio::test]
async fn recorders_stack_and_each_sees_whole_trees() {
    let outer = CallRecorder::new();
    let inner = CallRecorder::new();
    let set = services::all(ServiceSet::builder())
        .hook(outer.clone())
        .hook(inner.clone())
        .build()
        .unwrap();
    let ctx = Ctx::new();
    set.client("test", "svc2")
        .unwrap()
        .call(&ctx, services::api::svc2::GetReq {})
        .await
        .unwrap();
    for recorder in [&outer, &inner] {
        let trees = recorder.trees_for(ctx.request_id().as_str());
        assert_eq!(trees.len(), 1);
        assert_eq!(trees[0].iter().count(), 3, "svc2 -> svc3 -> svc4");
        assert_eq!(recorder.len(), 3);
        let records = recorder.records();
        assert_eq!(records[1].parent, Some(records[0].id));
        assert_eq!(records[2].parent, Some(records[1].id));
    }
    inner.clear();
    assert!(inner.is_empty());
    assert_eq!(outer.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_call_its_caller_gave_up_on_is_unfinished() {
    let slow = request_fn(svc4::NAME, |_ctx, _r: svc4::Req| async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(svc4::Resp::default())
    });
    let t = TestSet::builder().service(slow).build().unwrap();
    let ctx = Ctx::new().with_timeout(Duration::from_secs(1));
    let err = t
        .call_with(&ctx, svc4::NAME, svc4::Req::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    let tree = t.last_call_tree().unwrap();
    // The recorder sits inside the client's deadline: it saw the call start, never end.
    assert_eq!(tree.outcome, CallOutcome::Unfinished);
    assert_eq!(tree.request_id, ctx.request_id().as_str());
}

#[test]
fn call_trees_are_plain_serde_values() {
    let json = r#"{
        "caller": "test", "service": "svc1", "request": "svc1.Req", "request_id": "ab",
        "body": {"param": "x"},
        "outcome": {"error": {"code": "C-NOT-FOUND", "message": "gone"}}
    }"#;
    let node: nano_test::CallNode = serde_json::from_str(json).unwrap();
    assert_eq!(
        node.outcome,
        CallOutcome::Error {
            code: "C-NOT-FOUND".into(),
            message: "gone".into()
        }
    );
    assert!(node.calls.is_empty());
    let again: nano_test::CallNode =
        serde_json::from_str(&serde_json::to_string(&node).unwrap()).unwrap();
    assert_eq!(again, node);
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<nano_test::Mock>();
    check::<nano_test::MockService>();
    check::<nano_test::MockCall>();
    check::<nano_test::Sequence>();
    check::<nano_test::TestSet>();
    check::<nano_test::TestSetBuilder>();
    check::<nano_test::TransportFidelity>();
    check::<nano_test::CallRecorder>();
    check::<nano_test::CallNode>();
    check::<nano_test::CallRecord>();
    check::<nano_test::Spec>();
    check::<nano_test::Mismatches>();
    check::<nano_test::Deployment>();
    check::<nano_test::ParityCheck>();
    check::<nano_test::ParityReport>();
    check::<nano_test::property::GeneratedCall>();
    check::<nano_test::property::PropertyFailure>();
    check::<nano_test::Snapshot>();
    check::<nano_test::Expectation<svc1::Req>>();
}

#[tokio::test]
async fn added_hooks_sit_inside_the_recorder() {
    // A hook that cuts svc4 off: the recorder, outside it, records what the caller got.
    let cut = |edge: &nano::Edge, next: nano::SharedService| {
        if edge.callee() == svc4::NAME {
            nano::SharedService::new(nano_test::service_fn(svc4::NAME, |_ctx, _req| async move {
                Err(NanoError::unavailable("svc4 is unreachable"))
            }))
        } else {
            next
        }
    };
    let t = TestSet::builder()
        .services(services::all)
        .hook(cut)
        .fidelity()
        .build()
        .unwrap();
    let err = t
        .call("svc2", services::api::svc2::GetReq {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE);
    let tree = t.last_call_tree().unwrap();
    let leaf = tree.iter().last().unwrap();
    assert_eq!(leaf.service, svc4::NAME);
    assert_eq!(
        leaf.outcome,
        CallOutcome::Error {
            code: codes::UNAVAILABLE.into(),
            message: "svc4 is unreachable".into()
        }
    );
}

/// A chain of `depth` calls, built directly.
fn chain(depth: usize) -> nano_test::CallNode {
    let call = |n: usize, calls| nano_test::CallNode {
        caller: "s".into(),
        service: "s".into(),
        request: "s.Req".into(),
        request_id: String::new(),
        body: serde_json::json!({ "n": n }).into(),
        outcome: nano_test::CallOutcome::Response(serde_json::json!({}).into()),
        calls,
    };
    let mut node = call(depth, Vec::new());
    for n in (0..depth).rev() {
        node = call(n, vec![node]);
    }
    node
}

#[test]
fn a_very_deep_tree_is_walked_without_overflowing_a_small_stack() {
    // 50,000 levels on a 256 KiB stack: any walk that recursed on the thread's own stack (drop,
    // clone, compare, print, save, load, compare_trees) would overflow it and abort the test.
    let walked = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let tree = chain(50_000);
            let copy = tree.clone();
            assert_eq!(copy, tree);
            let text = tree.to_string();
            assert_eq!(text.lines().count(), 50_001);
            assert!(text.ends_with("[50000] s -> s s.Req {\"n\":50000} => response {}\n"));
            assert!(format!("{tree:?}").len() > 50_000);
            let scenario = nano_test::scenario::Scenario::new("deep", tree);
            let loaded = nano_test::scenario::Scenario::from_json(
                &serde_json::to_string(&scenario).unwrap(),
                "deep.json",
            )
            .unwrap();
            assert_eq!(loaded, scenario);
            let mut changed = loaded.root.clone();
            let mut leaf = &mut changed;
            while !leaf.calls.is_empty() {
                leaf = &mut leaf.calls[0];
            }
            leaf.body = serde_json::json!({"n": -1}).into();
            let problems = nano_test::scenario::compare_trees(
                &nano_test::Spec::default(),
                &scenario.root,
                &changed,
            );
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].detail.contains("$.n"), "{}", problems[0].detail);
            problems.len()
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(walked, 1);
}
