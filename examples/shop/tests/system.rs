//! The shop through the toolkit's public APIs only: its executables (the reusable server main)
//! started as a layout, and the scenario runner's record, replay and parity run over it.

use std::path::PathBuf;
use std::process::ExitCode;

use nano::Ctx;
use nano_test::deploy::{Binaries, RunningLayout, StartOptions};
use nano_test::runner::Runner;
use shop::api::orders;

fn binaries() -> Binaries {
    Binaries::beside_current_exe().unwrap()
}

fn runner() -> Runner {
    Runner::new(shop::system())
        .build_with_cargo("shop")
        .root_service("orders")
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("shop")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_split_layout_serves_orders_through_two_processes()
-> Result<(), Box<dyn std::error::Error>> {
    let layout = RunningLayout::start(
        &shop::system(),
        "split",
        &binaries(),
        &StartOptions::default(),
    )
    .await?;
    assert_eq!(layout.processes().len(), 2);
    let deployment = layout.into_deployment()?;
    let placed = deployment
        .client(orders::NAME)?
        .call(
            &Ctx::new(),
            orders::Place {
                item: "tea".into(),
                quantity: 3,
            },
        )
        .await?;
    assert_eq!(placed.left, 7);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runner_records_replays_and_runs_the_parity_table_for_the_shop()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("runner");
    let dir_arg = dir.to_str().unwrap().to_owned();
    let run = |args: Vec<String>| {
        let mut argv = vec!["shop-scenarios".to_owned()];
        argv.extend(args);
        runner().main_from(argv)
    };
    let strings = |args: &[&str]| args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    // Record in-process, then on real servers of the split layout.
    let recorded = tokio::task::spawn_blocking({
        let dir_arg = dir_arg.clone();
        move || {
            let a = run(strings(&[
                "record",
                "tea",
                "--request",
                "orders.Place",
                "--body",
                r#"{"item":"tea","quantity":1}"#,
                "--dir",
                &dir_arg,
            ]));
            let b = run(strings(&[
                "record",
                "split-coffee",
                "--layout",
                "split",
                "--request",
                "orders.Place",
                "--body",
                r#"{"item":"coffee","quantity":2}"#,
                "--dir",
                &dir_arg,
            ]));
            (a, b)
        }
    })
    .await?;
    assert_eq!(recorded, (ExitCode::SUCCESS, ExitCode::SUCCESS));
    assert!(dir.join("tea.json").exists() && dir.join("split-coffee.json").exists());

    // Replay against a running monolith, as a team replays against a staging deployment.
    let layout = RunningLayout::start(
        &shop::system(),
        "monolith",
        &binaries(),
        &StartOptions::default(),
    )
    .await?;
    let target = layout.url_of(orders::NAME).unwrap();
    let file = dir.join("tea.json").to_str().unwrap().to_owned();
    let replayed =
        tokio::task::spawn_blocking(move || run(strings(&["replay", &file, "--target", &target])))
            .await?;
    assert_eq!(replayed, ExitCode::SUCCESS);

    // The parity run: both scenarios in every deployment, and a changed expectation fails.
    let parity = tokio::task::spawn_blocking({
        let dir_arg = dir_arg.clone();
        move || run(strings(&["--dir", &dir_arg]))
    })
    .await?;
    assert_eq!(parity, ExitCode::SUCCESS);
    let tea = dir.join("tea.json");
    let changed = std::fs::read_to_string(&tea)?.replace("\"left\": 9", "\"left\": 1");
    std::fs::write(&tea, changed)?;
    let failed = tokio::task::spawn_blocking(move || run(strings(&["--dir", &dir_arg]))).await?;
    assert_eq!(failed, ExitCode::from(1));
    Ok(())
}
