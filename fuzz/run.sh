#!/usr/bin/env bash
# Runs one fuzz target for a bounded time: fuzz/run.sh TARGET SECONDS
#   TARGET   scenario_loader or fault_plan (or "all": each target for SECONDS)
#   SECONDS  wall-clock budget per target
# Needs cargo-fuzz (cargo install cargo-fuzz). On a stable toolchain the sanitizer flags are
# allowed through RUSTC_BOOTSTRAP=1. The corpus grows in fuzz/corpus/TARGET (seeded from the
# recorded scenarios and the default chaos plan); crashes land in fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET SECONDS}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS}
if [[ $target == all ]]; then
    for t in scenario_loader fault_plan; do "$0" "$t" "$seconds"; done
    exit 0
fi
case $target in
    scenario_loader) seeds=(../scenarios/recorded/*.json) ;;
    fault_plan) seeds=(../scenarios/plans/*.json) ;;
    *) echo "unknown target $target: scenario_loader or fault_plan" >&2; exit 2 ;;
esac
corpus=corpus/$target
mkdir -p "$corpus"
cp -n "${seeds[@]}" "$corpus"/ 2>/dev/null || true
# Inputs up to 64 KiB, so deep trees (about 40 bytes a level) are in reach.
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
