#!/usr/bin/env bash
# Runs one fuzz target for a bounded time on its corpus and prints libFuzzer's final statistics.
#
#   fuzz-http/run.sh decode_request 300
#   fuzz-http/run.sh error_body 300
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); nightly features are enabled on the stable
# toolchain with RUSTC_BOOTSTRAP=1. New inputs go to corpus/TARGET, crashes to artifacts/TARGET;
# turn every crash into a regression test (nano-http's tests) before fixing it.
set -euo pipefail
target=${1:?usage: run.sh TARGET SECONDS}
seconds=${2:?usage: run.sh TARGET SECONDS}
cd "$(dirname "$0")"
mkdir -p "corpus/$target" "artifacts/$target"
export RUSTC_BOOTSTRAP=1
cargo fuzz build --fuzz-dir . "$target"
cargo fuzz run --fuzz-dir . "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$target/"
