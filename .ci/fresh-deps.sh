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
echo "== dependencies that resolve differently from the committed lockfile"
python3 - "$OLDPWD/Cargo.lock" Cargo.lock <<'PY'
import sys, tomllib
def versions(path):
    with open(path, "rb") as f:
        packages = tomllib.load(f)["package"]
    found = {}
    for p in packages:
        found.setdefault(p["name"], set()).add(p["version"])
    return found
old, new = versions(sys.argv[1]), versions(sys.argv[2])
changed = [(n, old.get(n, set()), new.get(n, set())) for n in sorted(old.keys() | new.keys()) if old.get(n) != new.get(n)]
for name, was, now in changed:
    print(f"  {name}: {', '.join(sorted(was)) or '-'} -> {', '.join(sorted(now)) or '-'}")
print(f"  ({len(changed)} changed)")
PY
CARGO_TARGET_DIR="$target" cargo test --workspace --no-fail-fast
