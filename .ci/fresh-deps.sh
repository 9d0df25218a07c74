#!/usr/bin/env bash
# Builds and tests the workspace against a freshly resolved lockfile: the newest
# semver-compatible version of every dependency, whatever its declared rust-version. This is
# what a crate outside this repository gets when it adds ours, so it is tested too, not only the
# committed Cargo.lock.
#
# The copy shares this checkout's target directory, so only the dependencies that changed are
# rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
git ls-files -z | xargs -0 cp --parents -t "$scratch"
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

cd "$scratch"
CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=allow cargo update 2>&1 | grep -E "Updating|Locking|Adding" || true
echo "== dependency versions that differ from the committed lockfile"
diff <(grep -A1 '^name = ' "$OLDPWD/Cargo.lock" | paste - - - | sort) \
     <(grep -A1 '^name = ' Cargo.lock | paste - - - | sort) | grep '^[<>]' || echo "(none)"
CARGO_TARGET_DIR="$target" cargo test --workspace --no-fail-fast
