#!/usr/bin/env bash
# The CPU benchmark, repeated: `depthlab bench --pytorch` N times (default
# 3), each invocation timing depthlab and the PyTorch reference side by side,
# then per network the median throughput of both, the median ratio and its
# range over the invocations.
#
# Usage: PYTHON=~/.cache/depthlab/torch-venv/bin/python scripts/bench_cpu.sh [N] [OUT]
#        DEPTHLAB_BIN=path/to/depthlab ARCHS=plain-20,resnet-20,resnet-56 THREADS=2 ...
# (PYTHON must have torch: python3 -m venv V && V/bin/pip install torch numpy)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-3}"
OUT="${2:-bench-cpu}"
PYTHON="${PYTHON:-python3}"
BIN="${DEPTHLAB_BIN:-target/release/depthlab}"
ARCHS="${ARCHS:-plain-20,resnet-20,resnet-56}"
mkdir -p "$OUT"
threads=()
if [ -n "${THREADS:-}" ]; then threads=(--threads "$THREADS"); fi
for i in $(seq 1 "$N"); do
    echo "== invocation $i of $N"
    "$BIN" bench --pytorch --python "$PYTHON" --pytorch-script bench/pytorch_reference.py --archs "$ARCHS" \
        --steps 10 --warmup 2 "${threads[@]}" --out "$OUT/run-$i.json" 2>&1 | grep -E '^cpu .*x ' || true
done
python3 - "$OUT" "$N" <<'PY'
import json, statistics, sys
out, n = sys.argv[1], int(sys.argv[2])
runs = [json.load(open(f"{out}/run-{i}.json")) for i in range(1, n + 1)]
archs = [r["case"]["arch"] for r in runs[0]["depthlab"]]
print(f"\n{'net':<10} {'depthlab img/s':>16} {'PyTorch img/s':>15} {'ratio (median)':>15} {'ratio range':>14} {'probe every step':>17}")
for a in archs:
    mine = [next(r["images_per_sec"] for r in run["depthlab"] if r["case"]["arch"] == a) for run in runs]
    probe = [next(r["probe_overhead"] for r in run["depthlab"] if r["case"]["arch"] == a) for run in runs]
    theirs = [next(p["images_per_sec"] for p in run["pytorch"] if p["arch"] == a and p["device"] == "cpu") for run in runs]
    ratios = [m / t for m, t in zip(mine, theirs)]
    print(f"{a:<10} {statistics.median(mine):>16.1f} {statistics.median(theirs):>15.1f} {statistics.median(ratios):>14.2f}x "
          f"{min(ratios):>6.2f}-{max(ratios):.2f}x {100 * statistics.median(probe):>+15.1f} %")
PY
