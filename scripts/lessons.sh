#!/usr/bin/env bash
# Plays every built-in lesson without the window and prints each step's wall
# time and figures (the figures docs/LESSONS.md and the README quote).
#
# Usage: scripts/lessons.sh [OUT]   (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${DEPTHLAB_BIN:-target/release/depthlab}
[ -x "$bin" ] || cargo build --release
out=${1:-$(mktemp -d)}
mkdir -p "$out"
for name in $("$bin" lesson list --json | python3 -c 'import json,sys; print(" ".join(l["name"] for l in json.load(sys.stdin)))'); do
    "$bin" lesson run "$name" --out "$out/$name" --json > "$out/$name.json" 2> "$out/$name.log"
    python3 - "$out/$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for s in r["steps"]:
    print(f'{r["lesson"]:<22} step {s["step"]}  {s["wall_secs"]:6.1f} s  {s["title"]}')
    for k, v in s["look_for"]["figures"].items():
        print(f'{"":<32}{k} = {v}')
print(f'{r["lesson"]:<22} total {r["total_secs"]:.1f} s')
PY
done
