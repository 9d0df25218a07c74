//! Serving over NATS over time: graceful shutdown, replicas in one queue group, and a broker
//! that restarts under the services.

use std::time::{Duration, Instant};

use nano::{Ctx, codes};
use nano_nats::NatsTransport;

use crate::broker::Broker;
use crate::support::{Echo, Say, Server, TestResult, client_set};

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_and_then_serves_no_more() -> TestResult {
    let broker = Broker::start();
    let server_side = NatsTransport::connect(&broker.url()).await?;
    let client_side = NatsTransport::connect(&broker.url()).await?;
    let echo = Echo::default();
    let started = echo.started.clone();
    let server = Server::start(&server_side, echo.clone(), |l| l).await;
    // Starting the server answered probes: take their start signal (Notify keeps one) and
    // count from here.
    started.notified().await;
    let probes = echo.served();

    let set = client_set(&client_side);
    let client = set.client("caller", "echo")?;
    let slow = Say {
        param: "late".into(),
        delay_ms: 500,
    };
    let in_flight = tokio::spawn(async move { client.call(&Ctx::new(), slow).await });
    started.notified().await;
    assert_eq!(echo.served(), probes, "the request is still in flight");
    server.stop().await?;
    // Causal, not timed: listen returned only after the handler in flight had finished.
    assert_eq!(
        echo.served(),
        probes + 1,
        "listen waited for the request in flight"
    );

    let said = in_flight.await??;
    assert_eq!(
        said.value, "echo_late",
        "the request in flight was answered"
    );

    let err = set
        .client("caller", "echo")?
        .call(&Ctx::new(), Say::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE, "{err}");
    Ok(())
}

#[tokio::test]
async fn requests_in_flight_past_the_grace_period_are_cut_off_with_a_code() -> TestResult {
    let broker = Broker::start();
    let transport = NatsTransport::connect(&broker.url()).await?;
    let echo = Echo::default();
    let (started, cancelled) = (echo.started.clone(), echo.cancelled.clone());
    let server = Server::start(&transport, echo, |l| {
        l.grace_period(Duration::from_millis(100))
    })
    .await;
    // The probes that saw the server start left one start signal; take it.
    started.notified().await;
    let set = client_set(&transport);
    let client = set.client("caller", "echo")?;
    let stuck = Say {
        param: "x".into(),
        delay_ms: 60_000,
    };
    let in_flight = tokio::spawn(async move { client.call(&Ctx::new(), stuck).await });
    started.notified().await;
    server.stop().await?;
    let err = in_flight.await?.unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE, "{err}");
    assert!(err.to_string().contains("shut down"), "{err}");
    // The work the handler spawned was told to stop (the wait only guards against a hang).
    tokio::time::timeout(Duration::from_secs(10), cancelled.notified())
        .await
        .map_err(|_| "the cut-off request's context was never cancelled")?;
    Ok(())
}

#[tokio::test]
async fn two_replicas_in_one_queue_group_share_a_thousand_requests() -> TestResult {
    let broker = Broker::start();
    // Each replica on its own connection, as two processes would be.
    let (a_side, b_side, client_side) = (
        NatsTransport::connect(&broker.url()).await?,
        NatsTransport::connect(&broker.url()).await?,
        NatsTransport::connect(&broker.url()).await?,
    );
    let (a, b) = (Echo::named("a"), Echo::named("b"));
    let server_a = Server::start(&a_side, a.clone(), |l| l).await;
    let server_b = Server::start(&b_side, b.clone(), |l| l).await;
    let (a_before, b_before) = (a.served(), b.served());

    let set = client_set(&client_side);
    let client = set.client("caller", "echo")?;
    let mut calls = tokio::task::JoinSet::<Result<crate::support::Said, nano::NanoError>>::new();
    let mut by_replica = std::collections::HashMap::<String, usize>::new();
    for i in 0..1_000 {
        if calls.len() >= 32 {
            let said = calls.join_next().await.unwrap()??;
            *by_replica.entry(said.replica).or_default() += 1;
        }
        let client = client.clone();
        calls.spawn(async move {
            client
                .call(
                    &Ctx::new(),
                    Say {
                        param: i.to_string(),
                        delay_ms: 0,
                    },
                )
                .await
        });
    }
    while let Some(said) = calls.join_next().await {
        *by_replica.entry(said??.replica).or_default() += 1;
    }
    let (served_a, served_b) = (a.served() - a_before, b.served() - b_before);
    assert_eq!(served_a + served_b, 1_000, "every request served once");
    assert_eq!(by_replica.get("a").copied().unwrap_or(0), served_a);
    assert!(
        served_a >= 100 && served_b >= 100,
        "a served {served_a}, b served {served_b}"
    );
    server_a.stop().await?;
    server_b.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_broker_restart_gives_coded_errors_during_the_outage_and_service_resumes() -> TestResult {
    let mut broker = Broker::start();
    let server_side = NatsTransport::connect(&broker.url()).await?;
    let client_side = NatsTransport::builder()
        .timeout(Duration::from_secs(1))
        .connect(&broker.url())
        .await?;
    let server = Server::start(&server_side, Echo::default(), |l| l).await;
    let set = client_set(&client_side);
    let client = set.client("caller", "echo")?;
    client.call(&Ctx::new(), Say::default()).await?;

    broker.stop();
    let mut outage_errors = 0;
    for _ in 0..5 {
        let err = client.call(&Ctx::new(), Say::default()).await.unwrap_err();
        assert!(
            err.has_code(codes::UNAVAILABLE) || err.has_code(codes::TIMEOUT),
            "a coded error during the outage: {err}"
        );
        outage_errors += 1;
    }
    assert_eq!(outage_errors, 5);

    broker.restart();
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        match client
            .call(
                &Ctx::new(),
                Say {
                    param: "back".into(),
                    delay_ms: 0,
                },
            )
            .await
        {
            Ok(said) => {
                assert_eq!(said.value, "echo_back");
                break;
            }
            Err(err) => {
                assert!(
                    err.has_code(codes::UNAVAILABLE) || err.has_code(codes::TIMEOUT),
                    "{err}"
                );
                assert!(Instant::now() < until, "service did not resume: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // Both connections are back; the listener kept serving without being restarted.
    for _ in 0..20 {
        client.call(&Ctx::new(), Say::default()).await?;
    }
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn requests_sent_after_subscribe_wait_for_the_listener_and_are_served() -> TestResult {
    let broker = Broker::start();
    let server_side = NatsTransport::connect(&broker.url()).await?;
    let client_side = NatsTransport::connect(&broker.url()).await?;
    let listener = server_side
        .listener()
        .expose_api(&crate::support::echo::API)?
        .subscribe()
        .await?;
    // A plain subscriber to the same subject sees the request once the broker has routed it,
    // and so has the listener's queue subscription.
    let mut spy = client_side.nats().subscribe("nano.echo.echo.Say").await?;
    client_side.nats().flush().await?;
    let set = client_set(&client_side);
    let client = set.client("caller", "echo")?;
    let early = tokio::spawn(async move {
        client
            .call(
                &Ctx::new(),
                Say {
                    param: "early".into(),
                    delay_ms: 0,
                },
            )
            .await
    });
    futures_util::StreamExt::next(&mut spy)
        .await
        .expect("the request reached the broker");

    let echo = Echo::named("a");
    let set = nano::ServiceSet::builder()
        .service(crate::support::echo::service({
            let echo = echo.clone();
            move |_| Ok(echo)
        }))
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(nano_server::serve_until(
        set,
        vec![nano_server::Listener::boxed(listener)],
        async {
            let _ = stopped.await;
        },
    ));
    let said = early.await??;
    assert_eq!(said.value, "echo_early");
    assert_eq!(said.replica, "a");
    assert_eq!(echo.served(), 1);
    let _ = stop.send(());
    serving.await??;
    Ok(())
}

#[tokio::test]
async fn past_the_in_flight_limit_requests_wait_for_a_free_slot() -> TestResult {
    let broker = Broker::start();
    let transport = NatsTransport::connect(&broker.url()).await?;
    let echo = Echo::default();
    let started = echo.started.clone();
    let server = Server::start(&transport, echo.clone(), |l| l.max_in_flight(1)).await;
    started.notified().await;
    let probes = echo.served();
    let set = client_set(&transport);
    let slow = Say {
        param: "slow".into(),
        delay_ms: 300,
    };
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let (client, slow) = (set.client("caller", "echo")?, slow.clone());
        calls.spawn(async move { client.call(&Ctx::new(), slow).await });
    }
    // Causal, not timed: each request starts only once the one before it was served.
    for n in 0..3 {
        started.notified().await;
        assert_eq!(
            echo.served(),
            probes + n,
            "request {n} started with another in flight"
        );
    }
    while let Some(said) = calls.join_next().await {
        assert_eq!(said??.value, "echo_slow");
    }
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn requests_waiting_for_a_listener_at_its_limit_are_bounded_and_the_rest_time_out()
-> TestResult {
    let broker = Broker::start();
    // One request handled at a time, and at most two waiting in the subscription.
    let server_side = NatsTransport::builder()
        .pending_messages(2)
        .connect(&broker.url())
        .await?;
    let client_side = NatsTransport::connect(&broker.url()).await?;
    let echo = Echo::default();
    let server = Server::start(&server_side, echo.clone(), |l| l.max_in_flight(1)).await;
    let set = client_set(&client_side);
    let slow = Say {
        param: "slow".into(),
        delay_ms: 400,
    };
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (client, slow) = (set.client("caller", "echo")?, slow.clone());
        calls.spawn(async move {
            let ctx = Ctx::new().with_timeout(Duration::from_secs(4));
            client.call(&ctx, slow).await
        });
    }
    let (mut answered, mut timed_out) = (0, 0);
    while let Some(said) = calls.join_next().await {
        match said? {
            Ok(said) => {
                assert_eq!(said.value, "echo_slow");
                answered += 1;
            }
            Err(err) => {
                assert_eq!(err.code(), codes::TIMEOUT, "{err}");
                timed_out += 1;
            }
        }
    }
    // The one in flight, the one its reader holds, and the two waiting: the others were
    // dropped, not held, and their callers got a coded timeout.
    assert!((1..=4).contains(&answered), "{answered} answered");
    assert_eq!(answered + timed_out, 12);
    server.stop().await?;
    Ok(())
}
