//! Scenarios: record → file → replay round trips, each replay mode catching a behaviour change,
//! recording split across processes, and every malformed-file error.

use std::path::Path;

use nano::{AnyRequest, Client, Ctx, Dependencies, NanoError, Outcome, Service, ServiceSet, codes};
use nano_test::request_fn;
use nano_test::scenario::{
    Registry, Replayed, Scenario, replay_isolated, replay_outcome, replay_set,
};
use nano_test::{
    CallOutcome, CallRecorder, Deployment, DirectoryRecorder, Matcher, Rule, Spec, join_fragments,
    read_fragments,
};
use services::api::{svc1, svc2, svc3};

fn registry() -> Registry {
    Registry::new().with_all(services::api::request_types())
}

/// Records one call to svc2 on the four real services.
async fn record<R: nano::Request>(name: &str, request: R) -> Scenario {
    let recorder = CallRecorder::new();
    let set = services::all(ServiceSet::builder())
        .hook(recorder.clone())
        .build()
        .unwrap();
    let _ = set
        .client("test", svc2::NAME)
        .unwrap()
        .call(&Ctx::new(), request)
        .await;
    Scenario::new(name, recorder.last_tree().unwrap())
}

#[tokio::test]
async fn record_save_load_replay_is_identical() {
    let dir = tempdir();
    for (name, scenario) in [
        (
            "svc2-req",
            record("svc2-req", svc2::Req { param: "x".into() }).await,
        ),
        ("svc2-get", record("svc2-get", svc2::GetReq {}).await),
    ] {
        let path = dir.join(format!("{name}.json"));
        scenario.save(&path).unwrap();
        let loaded = Scenario::load(&path).unwrap();
        assert_eq!(loaded, scenario);
        // Stored without request ids, pretty-printed, stable.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("request_id"), "{text}");
        assert_eq!(text, loaded.to_json());
        replay_set(
            &loaded,
            &registry(),
            services::all(ServiceSet::builder()),
            true,
        )
        .await
        .unwrap();
    }
    let get = Scenario::load(dir.join("svc2-get.json")).unwrap();
    assert_eq!(get.root.iter().count(), 3);
}

#[tokio::test]
async fn whole_set_replay_catches_a_changed_response() {
    let scenario = record("svc2-req", svc2::Req { param: "x".into() }).await;
    let changed_svc1 = request_fn(svc1::NAME, |_ctx, r: svc1::Req| async move {
        Ok(svc1::Resp {
            value: format!("svc1v2_{}", r.param),
        })
    });
    let builder = ServiceSet::builder()
        .service(services::svc2::service())
        .service(changed_svc1)
        .service(services::svc3::service())
        .service(services::svc4::service());
    let failure = replay_set(&scenario, &registry(), builder, false)
        .await
        .unwrap_err();
    let text = failure.to_string();
    assert!(
        text.starts_with("scenario \"svc2-req\" (whole set): 1 difference"),
        "{text}"
    );
    assert!(text.contains("call test -> svc2 svc2.Req"), "{text}");
    assert!(
        text.contains(r#"$.value: expected "svc2_svc1_x", found "svc2_svc1v2_x""#),
        "{text}"
    );
    assert!(text.contains("-    \"value\": \"svc2_svc1_x\""), "{text}");
}

#[tokio::test]
async fn tree_replay_catches_a_call_that_is_no_longer_made() {
    let scenario = record("svc2-get", svc2::GetReq {}).await;
    // The same answer, without asking svc4.
    let builder = || {
        ServiceSet::builder()
            .service(services::svc2::service())
            .service(services::svc1::service())
            .service(request_fn(svc3::NAME, |_ctx, r: svc3::Req| async move {
                Ok(svc3::Resp {
                    value: format!("svc3_svc4_{}", r.param),
                })
            }))
    };
    // The outcome alone is the same...
    replay_set(&scenario, &registry(), builder(), false)
        .await
        .unwrap();
    // ...the call tree is not.
    let failure = replay_set(&scenario, &registry(), builder(), true)
        .await
        .unwrap_err();
    assert_only_missing(&failure, "svc3 -> svc4 svc4.Req");
}

/// Asserts that the one problem of `failure` is the recorded `call` not being made.
fn assert_only_missing(failure: &nano_test::scenario::ReplayFailure, call: &str) {
    assert_eq!(failure.problems.len(), 1, "{failure}");
    assert_eq!(failure.problems[0].call, call);
    assert!(
        failure.problems[0].detail.starts_with("missing"),
        "{failure}"
    );
}

/// svc2 with a changed behaviour, for isolated replays: answers in upper case, and optionally
/// asks svc1 twice.
struct ChangedSvc2 {
    inner: svc2::Served<services::svc2::Svc2>,
    svc1: Client,
    ask_twice: bool,
}

/// The changed svc2, built from its dependencies like the real one.
fn changed_svc2(ask_twice: bool) -> nano::NewService {
    nano::NewService::construct(svc2::NAME, move |deps| {
        let svc1 = deps.client(svc1::NAME)?;
        let svc3 = deps.client(services::api::svc3::NAME)?;
        Ok(ChangedSvc2 {
            inner: svc2::Served(services::svc2::Svc2::new(svc1.clone(), svc3)),
            svc1,
            ask_twice,
        })
    })
}

impl Service for ChangedSvc2 {
    fn name(&self) -> &str {
        svc2::NAME
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        if self.ask_twice
            && let Some(r) = req.downcast_ref::<svc2::Req>()
        {
            self.svc1
                .call(
                    &ctx,
                    svc1::Req {
                        param: r.param.clone(),
                    },
                )
                .await?;
        }
        let resp = Service::handle(&self.inner, ctx, req).await?;
        match resp.downcast::<svc2::Resp>() {
            Ok(r) if !self.ask_twice => Ok(nano::AnyResponse::new(svc2::Resp {
                value: r.value.to_uppercase(),
            })),
            Ok(r) => Ok(nano::AnyResponse::new(r)),
            Err(other) => Ok(other),
        }
    }
}

#[tokio::test]
async fn isolated_replay_answers_dependencies_from_the_recording() {
    let scenario = record("svc2-req", svc2::Req { param: "x".into() }).await;
    replay_isolated(&scenario, &registry(), services::svc2::service)
        .await
        .unwrap();
    // svc3 is two levels down; its own isolated replay uses the recorded svc4 answer.
    let get = record("svc2-get", svc2::GetReq {}).await;
    replay_isolated(&get, &registry(), services::svc3::service)
        .await
        .unwrap();
}

#[tokio::test]
async fn isolated_replay_catches_a_changed_answer_and_an_extra_call() {
    let scenario = record("svc2-req", svc2::Req { param: "x".into() }).await;
    let failure = replay_isolated(&scenario, &registry(), || changed_svc2(false))
        .await
        .unwrap_err();
    assert_eq!(failure.mode, "isolated svc2");
    assert!(
        failure
            .to_string()
            .contains(r#"$.value: expected "svc2_svc1_x", found "SVC2_SVC1_X""#),
        "{failure}"
    );
    // Returned with `?` from a test, the harness prints the error's Debug form: the same report.
    let returned: Box<dyn std::error::Error> = Box::new(failure.clone());
    assert_eq!(format!("{returned:?}"), failure.to_string());

    let failure = replay_isolated(&scenario, &registry(), || changed_svc2(true))
        .await
        .unwrap_err();
    let text = failure.to_string();
    // The first call takes the one recorded answer; the second has none.
    assert!(
        text.contains("call svc2 -> svc1 svc1.Req: unexpected"),
        "{text}"
    );
    assert!(text.contains("S-UNEXPECTED-CALL"), "{text}");
}

#[tokio::test]
async fn isolated_replay_reports_recorded_calls_that_are_not_made() {
    let scenario = record("svc2-req", svc2::Req { param: "x".into() }).await;
    // A svc2 that answers without asking svc1.
    let lazy = || {
        request_fn(svc2::NAME, |_ctx, r: svc2::Req| async move {
            Ok(svc2::Resp {
                value: format!("svc2_svc1_{}", r.param),
            })
        })
    };
    let failure = replay_isolated(&scenario, &registry(), lazy)
        .await
        .unwrap_err();
    assert_only_missing(&failure, "svc2 -> svc1 svc1.Req");
}

/// Asks svc1 twice with the same request and joins the answers.
struct AskTwice {
    svc1: Option<Client>,
}

impl Service for AskTwice {
    fn name(&self) -> &str {
        "twice"
    }

    fn init(&mut self, deps: &mut Dependencies<'_>) -> Result<(), NanoError> {
        self.svc1 = Some(deps.client(svc1::NAME)?);
        Ok(())
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let svc1 = self.svc1.as_ref().unwrap();
        nano::dispatch!(req, {
            svc1::Req => |r| {
                let a = svc1.call(&ctx, r.clone()).await?;
                let b = svc1.call(&ctx, r).await?;
                Ok(svc1::Resp { value: format!("{}+{}", a.value, b.value) })
            },
        })
    }
}

#[tokio::test]
async fn repeated_identical_requests_get_their_recorded_answers_in_order() {
    // A dependency that answers differently the second time.
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let flaky = request_fn(svc1::NAME, move |_ctx, _r: svc1::Req| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            Ok(svc1::Resp {
                value: format!("answer{n}"),
            })
        }
    });
    let recorder = CallRecorder::new();
    let set = ServiceSet::builder()
        .service(AskTwice { svc1: None })
        .service(flaky)
        .hook(recorder.clone())
        .build()
        .unwrap();
    let resp = set
        .client("test", "twice")
        .unwrap()
        .call(&Ctx::new(), svc1::Req { param: "p".into() })
        .await
        .unwrap();
    assert_eq!(resp.value, "answer0+answer1");
    let scenario = Scenario::new("twice", recorder.last_tree().unwrap());
    replay_isolated(&scenario, &registry(), || AskTwice { svc1: None })
        .await
        .unwrap();
}

#[tokio::test]
async fn outcome_replay_against_a_deployment_and_unreachable_services() {
    let scenario = record("svc2-req", svc2::Req { param: "x".into() }).await;
    let deployment = Deployment::in_process(services::all(ServiceSet::builder())).unwrap();
    let replayed = replay_outcome(&scenario, &registry(), &deployment).await;
    assert_eq!(replayed, Ok(Replayed::Passed));

    // A body that does not decode never reaches an in-process set: the set cannot decide it.
    let mut bad = scenario.clone();
    bad.root.body = serde_json::json!({"param": 42}).into();
    match replay_outcome(&bad, &registry(), &deployment).await {
        Ok(Replayed::NotApplicable(reason)) => assert!(
            reason.starts_with("the recorded body does not decode as svc2.Req"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }

    // A scenario that expects svc3 to be down, its transport-specific message matched by a regex.
    let mut down = record("svc3-down", svc2::GetReq {}).await;
    down.root.outcome = CallOutcome::Error {
        code: codes::UNAVAILABLE.into(),
        message: "svc3 failure :: connection refused".into(),
    };
    down.root.calls[0].outcome = CallOutcome::Error {
        code: codes::UNAVAILABLE.into(),
        message: "connection refused".into(),
    };
    down.root.calls[0].calls.clear();
    down.unreachable = vec!["svc3".into()];
    // How the transport words "unreachable" differs between deployments; the code does not.
    down.spec = Spec::new()
        .rule(
            Rule::matching("message", Matcher::regex("^svc3 failure :: ").unwrap())
                .unwrap()
                .for_service("svc2"),
        )
        .rule(
            Rule::matching("message", Matcher::AnyString)
                .unwrap()
                .for_service("svc3"),
        );
    replay_set(
        &down,
        &registry(),
        services::all(ServiceSet::builder()),
        true,
    )
    .await
    .unwrap();
    // Without svc3 down the replay fails.
    down.unreachable.clear();
    let failure = replay_set(
        &down,
        &registry(),
        services::all(ServiceSet::builder()),
        true,
    )
    .await
    .unwrap_err();
    assert!(failure.to_string().contains("response"), "{failure}");
}

#[tokio::test]
async fn a_recorded_bad_request_replays_as_the_same_decoding_error() {
    let mut scenario = record("bad", svc2::Req { param: "x".into() }).await;
    scenario.root.body = serde_json::json!({"param": 42}).into();
    scenario.root.calls.clear();
    let err = registry()
        .decode_request("svc2.Req", &scenario.root.body)
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST);
    scenario.root.outcome = CallOutcome::from_error(&err);
    replay_set(
        &scenario,
        &registry(),
        services::all(ServiceSet::builder()),
        true,
    )
    .await
    .unwrap();
}

/// Stands in for a transport: forwards to another set as `caller`, keeping the request id.
struct Forward {
    name: &'static str,
    caller: &'static str,
    target: ServiceSet,
}

impl Service for Forward {
    fn name(&self) -> &str {
        self.name
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let client = self.target.client(self.caller, self.name)?;
        let remote = Ctx::with_request_id(ctx.request_id().clone());
        client.call_any(&remote, req).await.map_err(|e| e.flatten())
    }
}

#[tokio::test]
async fn fragments_recorded_by_two_processes_join_into_one_tree() {
    let dir = tempdir();
    let recorder_b = DirectoryRecorder::new(&dir, "server2b").unwrap();
    let server_b = ServiceSet::builder()
        .service(services::svc3::service())
        .service(services::svc4::service())
        .hook(recorder_b.clone())
        .build()
        .unwrap();
    let recorder_a = DirectoryRecorder::new(&dir, "server2a").unwrap();
    let server_a = ServiceSet::builder()
        .service(services::svc1::service())
        .service(services::svc2::service())
        .service(Forward {
            name: "svc3",
            caller: "svc2",
            target: server_b,
        })
        .hook(recorder_a.clone())
        .build()
        .unwrap();
    let client = server_a.client("test_client", svc2::NAME).unwrap();
    for _ in 0..2 {
        client.call(&Ctx::new(), svc2::GetReq {}).await.unwrap();
    }
    client
        .call(&Ctx::new(), svc2::Req { param: "y".into() })
        .await
        .unwrap();
    // Fragments are written by a thread of each recorder; flushing waits for it.
    recorder_a.flush();
    recorder_b.flush();
    assert_eq!(recorder_a.written(), 3);

    let fragments = read_fragments(&dir).unwrap();
    assert_eq!(fragments.len(), 5);
    let trees = join_fragments(fragments);
    assert_eq!(trees.len(), 3);
    let get = trees.iter().find(|t| t.request == "svc2.GetReq").unwrap();
    let names: Vec<String> = get
        .iter()
        .map(|n| format!("{} -> {}", n.caller, n.service))
        .collect();
    assert_eq!(
        names,
        ["test_client -> svc2", "svc2 -> svc3", "svc3 -> svc4"]
    );
    // The joined tree replays like an in-process recording.
    let scenario = Scenario::new("joined", get.clone());
    replay_set(
        &scenario,
        &registry(),
        services::all(ServiceSet::builder()),
        true,
    )
    .await
    .unwrap();
}

fn load_error(text: &str) -> String {
    Scenario::from_json(text, "scenarios/broken.json")
        .unwrap_err()
        .to_string()
}

#[test]
fn every_malformed_file_gets_an_error_naming_the_file_the_place_and_the_problem() {
    let valid = r#"{"version": 1, "name": "n", "root": {"caller": "test", "service": "svc2",
        "request": "svc2.Req", "body": {}, "outcome": {"response": {}}}}"#;
    Scenario::from_json(valid, "ok.json").unwrap();

    let broken = load_error(r#"{"version": 1, "name": "n", "root": {"caller": "test",, }}"#);
    assert!(broken.starts_with("scenarios/broken.json:1:"), "{broken}");
    assert!(broken.contains("not valid JSON"), "{broken}");

    let truncated = load_error(&valid[..60]);
    assert!(
        truncated.starts_with("scenarios/broken.json:1:"),
        "{truncated}"
    );
    assert!(
        truncated.contains("ends too early (truncated?)"),
        "{truncated}"
    );

    let version = load_error(&valid.replace("\"version\": 1", "\"version\": 2"));
    assert_eq!(
        version,
        "scenarios/broken.json: at `version`: unsupported scenario version 2: this build reads version 1"
    );
    let no_version = load_error(r#"{"name": "n"}"#);
    assert!(
        no_version.contains("missing field `version`"),
        "{no_version}"
    );

    let unknown_field = load_error(&valid.replace("\"body\"", "\"bdy\""));
    assert!(
        unknown_field.contains("at `root.bdy`: unknown field `bdy`"),
        "{unknown_field}"
    );
    assert!(
        unknown_field.starts_with("scenarios/broken.json:2:"),
        "{unknown_field}"
    );

    let missing = load_error(&valid.replace(r#""outcome": {"response": {}}"#, r#""calls": []"#));
    assert!(missing.contains("missing field `outcome`"), "{missing}");

    let bad_outcome = load_error(&valid.replace("\"response\"", "\"respons\""));
    assert!(
        bad_outcome.contains("at `root.outcome`: unknown variant `respons`"),
        "{bad_outcome}"
    );

    let wrong_type = load_error(&valid.replace("\"name\": \"n\"", "\"name\": 5"));
    assert!(
        wrong_type.contains("at `name`: invalid type: integer `5`"),
        "{wrong_type}"
    );

    let bad_spec = load_error(&valid.replace(
        "\"root\"",
        r#""spec": {"rules": [{"path": "a", "action": "explode"}]}, "root""#,
    ));
    assert!(bad_spec.contains("at `spec.rules"), "{bad_spec}");

    let misspelt_rule_key = load_error(&valid.replace(
        "\"root\"",
        r#""spec": {"rules": [{"path": "a", "servce": "svc2", "action": "ignore"}]}, "root""#,
    ));
    assert!(
        misspelt_rule_key.contains("unknown field `servce`"),
        "{misspelt_rule_key}"
    );
    let matcherless = load_error(&valid.replace(
        "\"root\"",
        r#""spec": {"rules": [{"path": "a", "action": "match"}]}, "root""#,
    ));
    assert!(
        matcherless.contains("action `match` needs a `matcher`"),
        "{matcherless}"
    );

    let empty_name = load_error(&valid.replace("\"name\": \"n\"", "\"name\": \" \""));
    assert!(
        empty_name.contains("at `name`: the name is empty"),
        "{empty_name}"
    );

    let missing_file = Scenario::load("no/such/file.json").unwrap_err().to_string();
    assert!(
        missing_file.starts_with("no/such/file.json: cannot read the file"),
        "{missing_file}"
    );
}

#[test]
fn an_unregistered_request_type_is_a_clear_replay_error() {
    let err = Registry::new()
        .with::<svc1::Req>()
        .decode_request("svc9.Req", &nano_test::Json::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "request type svc9.Req is not registered for replay (registered: svc1.Req)"
    );
}

/// A fresh directory under the target directory; the directories of the previous run are
/// removed when the first one of this run is made.
fn tempdir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    static CLEARED: std::sync::Once = std::sync::Once::new();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scenario-tests");
    CLEARED.call_once(|| {
        let _ = std::fs::remove_dir_all(&root);
    });
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = root.join(n.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(start_paused = true)]
async fn a_root_call_its_caller_abandons_is_written_as_unfinished() {
    let dir = tempdir();
    let recorder = DirectoryRecorder::new(&dir, "server").unwrap();
    let stuck = request_fn(svc1::NAME, |_ctx, _r: svc1::Req| async move {
        std::future::pending::<()>().await;
        Ok(svc1::Resp::default())
    });
    let set = ServiceSet::builder()
        .service(stuck)
        .hook(recorder.clone())
        .build()
        .unwrap();
    let ctx = Ctx::new().with_timeout(std::time::Duration::from_millis(50));
    let err = set
        .client("http", svc1::NAME)
        .unwrap()
        .call(&ctx, svc1::Req::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    recorder.flush();
    assert_eq!(recorder.written(), 1);
    let fragments = read_fragments(&dir).unwrap();
    assert_eq!(fragments[0].tree.outcome, CallOutcome::Unfinished);
}

fn node(caller: &str, service: &str, calls: Vec<nano_test::CallNode>) -> nano_test::CallNode {
    nano_test::CallNode {
        caller: caller.into(),
        service: service.into(),
        request: format!("{service}.Req"),
        request_id: "same".into(),
        body: serde_json::json!({}).into(),
        outcome: CallOutcome::Response(serde_json::json!({}).into()),
        calls,
    }
}

#[test]
fn roots_that_reuse_a_request_id_stay_separate_trees() {
    let fragment = |process: &str, tree| nano_test::Fragment {
        version: 1,
        process: process.into(),
        tree,
    };
    // A client sent the same request twice with one id; svc2 called svc3 (another process) each
    // time.
    let fragments = vec![
        fragment(
            "a",
            node("client", "svc2", vec![node("svc2", "svc3", vec![])]),
        ),
        fragment(
            "a",
            node("client", "svc2", vec![node("svc2", "svc3", vec![])]),
        ),
        fragment(
            "b",
            node("svc2", "svc3", vec![node("svc3", "svc4", vec![])]),
        ),
        fragment(
            "b",
            node("svc2", "svc3", vec![node("svc3", "svc4", vec![])]),
        ),
    ];
    let trees = join_fragments(fragments);
    assert_eq!(trees.len(), 2);
    for tree in &trees {
        assert_eq!(tree.iter().count(), 3, "{tree}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_stand_in_for_an_unfinished_call_waits_for_the_callers_deadline_never_forever() {
    let mut unfinished = node("svc2", "svc1", vec![]);
    unfinished.outcome = CallOutcome::Unfinished;
    let stand_in = nano_test::scenario::RecordedService::new(
        "svc1",
        [&unfinished, &unfinished],
        &registry(),
        &Spec::default(),
    );
    let set = ServiceSet::builder().service(stand_in).build().unwrap();
    let client = set.client("svc2", "svc1").unwrap();
    let started = tokio::time::Instant::now();
    let ctx = Ctx::new().with_timeout(std::time::Duration::from_millis(40));
    let err = client.call(&ctx, svc1::Req::default()).await.unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    assert_eq!(started.elapsed(), std::time::Duration::from_millis(40));
    // Without a deadline nothing would end the wait, so the stand-in answers at once.
    let err = client
        .call(&Ctx::new(), svc1::Req::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    assert_eq!(err.to_string(), "svc1 was recorded as unfinished");
}

/// Two declarations that give different request types the same wire name.
mod clashing {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    pub(crate) struct First {}
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    pub(crate) struct Second {}

    pub(crate) mod one {
        nano::api! {
            service "one";
            fn first(super::First) -> () = "shared.Name";
        }
    }
    pub(crate) mod two {
        nano::api! {
            service "two";
            fn second(super::Second) -> () = "shared.Name";
        }
    }
}

#[test]
fn a_registry_refuses_apis_that_make_recordings_ambiguous() {
    let err = nano_test::scenario::Registry::from_apis(&[&clashing::one::API, &clashing::two::API])
        .err()
        .unwrap();
    assert_eq!(err.code(), nano_test::codes::BAD_SPEC);
    assert!(
        err.to_string()
            .contains(r#"wire name "shared.Name" is declared for"#),
        "{err}"
    );
    let registry = nano_test::scenario::Registry::from_apis(&services::api::APIS).unwrap();
    assert_eq!(
        registry.names().collect::<Vec<_>>(),
        [
            "svc1.Req",
            "svc2.GetReq",
            "svc2.Req",
            "svc3.Req",
            "svc4.Req"
        ]
    );
}

#[tokio::test]
async fn a_call_the_recording_lacks_fails_passes_through_or_is_added() {
    use nano_test::scenario::{OnMiss, replay_isolated_with};
    let scenario = record("svc2-req", svc2::Req { param: "x".into() }).await;
    let real = || services::all(ServiceSet::builder()).build().unwrap();

    // The default: the second call to svc1 has no recorded answer.
    let failure =
        replay_isolated_with(&scenario, &registry(), || changed_svc2(true), &OnMiss::Fail)
            .await
            .unwrap_err();
    assert!(
        failure.to_string().contains("S-UNEXPECTED-CALL"),
        "{failure}"
    );

    // Passed through to the real svc1: no difference, and the scenario is unchanged.
    let same = replay_isolated_with(
        &scenario,
        &registry(),
        || changed_svc2(true),
        &OnMiss::PassThrough(real()),
    )
    .await
    .unwrap();
    assert_eq!(same, scenario);

    // Recorded: the grown scenario holds both calls, and replays without a pass-through.
    let grown = replay_isolated_with(
        &scenario,
        &registry(),
        || changed_svc2(true),
        &OnMiss::Record(real()),
    )
    .await
    .unwrap();
    let to_svc1: Vec<_> = grown
        .root
        .calls
        .iter()
        .filter(|c| c.service == "svc1")
        .collect();
    assert_eq!(to_svc1.len(), 2, "{}", grown.root);
    assert_eq!(to_svc1[1].body, serde_json::json!({"param": "x"}));
    replay_isolated_with(&grown, &registry(), || changed_svc2(true), &OnMiss::Fail)
        .await
        .unwrap();
    // Saved and loaded again, it is still a valid scenario file.
    let dir = tempdir();
    grown.save(dir.join("grown.json")).unwrap();
    assert_eq!(Scenario::load(dir.join("grown.json")).unwrap(), grown);
}
