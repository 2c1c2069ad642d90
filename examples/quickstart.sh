#!/usr/bin/env bash
# The quickstart: a real rollout of a flag in a flagd file, driven by a command check, with the
# clock set by --now so that an hour of baking takes no time. Nothing outside a temp directory
# is touched, and no server is needed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cargo build --quiet --manifest-path "$repo/Cargo.toml"
flagramp="$repo/target/debug/flagramp"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$here/quickstart/." "$work/"
cd "$work"

share() {
  python3 -c 'import json;f=json.load(open("flags/flags.flagd.json"))["flags"]["new-checkout"];t=f.get("targeting",{}).get("fractional");print("  flag file:", f["state"], t if t else "")' 2>/dev/null || true; }
step() { printf '\n$ flagramp %s\n' "$*"; "$flagramp" "$@" || true; share; }

step validate
step run --now 2026-11-24T09:00:00Z
step run --now 2026-11-24T09:30:00Z
step run --now 2026-11-24T10:00:00Z
echo; echo "# the success rate drops to 0.80"; echo 0.80 > metrics/success-rate
step run --now 2026-11-24T10:10:00Z
step run --now 2026-11-24T10:20:00Z
echo; echo "# it recovers; a person decides to continue"; echo 0.99 > metrics/success-rate
step advance new-checkout --reason "fix deployed" --actor alice --now 2026-11-24T10:30:00Z
step status
