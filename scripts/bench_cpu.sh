#!/usr/bin/env bash
# The CPU benchmark, repeated: `depthlab bench --pytorch` N times (default
# 3), each invocation timing depthlab and the PyTorch reference side by side
# in the variants VARIANTS (eager NCHW, channels_last, torch.compile), then
# per network the median throughput of depthlab and of each variant, the
# median ratio to the fastest variant of each invocation and its range, and
# the fraction of the machine's measured fp32 peak depthlab reaches.
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
VARIANTS="${VARIANTS:-eager,channels_last,compile}"
BATCH="${BATCH:-128}"
mkdir -p "$OUT"
threads=()
if [ -n "${THREADS:-}" ]; then threads=(--threads "$THREADS"); fi
for i in $(seq 1 "$N"); do
    echo "== invocation $i of $N"
    "$BIN" bench --pytorch --python "$PYTHON" --pytorch-script bench/pytorch_reference.py --archs "$ARCHS" \
        --variants "$VARIANTS" --batch-size "$BATCH" --steps 10 --warmup 2 "${threads[@]}" --out "$OUT/run-$i.json" 2>&1 \
        | grep -E '^cpu .*x |peak|failed' || true
done
python3 - "$OUT" "$N" <<'PY'
import json, statistics, sys
out, n = sys.argv[1], int(sys.argv[2])
runs = [json.load(open(f"{out}/run-{i}.json")) for i in range(1, n + 1)]
archs = [r["case"]["arch"] for r in runs[0]["depthlab"]]
variants = ["eager", "channels_last", "compile"]
def speed(run, arch, variant):
    return next((p["images_per_sec"] for p in run["pytorch"]
                 if p["arch"] == arch and p["device"] == "cpu" and p.get("variant", "eager") == variant and "images_per_sec" in p), None)
print(f"\n{'net':<12} {'depthlab':>9} {'eager':>9} {'ch_last':>9} {'compile':>9} {'ratio to best (median)':>23} {'range':>12} {'% of peak':>10} {'peak MiB':>9} {'PyTorch MiB':>12}")
for a in archs:
    mine = [next(r for r in run["depthlab"] if r["case"]["arch"] == a) for run in runs]
    theirs = {v: [speed(run, a, v) for run in runs] for v in variants}
    best = [max((s for s in (speed(run, a, v) for v in variants) if s), default=None) for run in runs]
    ratios = [m["images_per_sec"] / b for m, b in zip(mine, best) if b]
    peaks = [m["images_per_sec"] * m["flops_per_image"] / run["peak_flops_per_sec"] for m, run in zip(mine, runs)
             if m.get("flops_per_image") and run.get("peak_flops_per_sec")]
    med = lambda xs: statistics.median([x for x in xs if x]) if any(xs) else float("nan")
    torch_mib = [p.get("peak_rss_mib") for run in runs for p in run["pytorch"] if p["arch"] == a and "peak_rss_mib" in p]
    print(f"{a:<12} {med([m['images_per_sec'] for m in mine]):>9.1f} " + " ".join(f"{med(theirs[v]):>9.1f}" for v in variants)
          + f" {statistics.median(ratios) if ratios else float('nan'):>22.2f}x {min(ratios, default=float('nan')):>5.2f}-{max(ratios, default=float('nan')):.2f}x"
          + f" {100 * statistics.median(peaks) if peaks else float('nan'):>9.1f}% {med([m.get('peak_rss_mib') for m in mine]):>9.0f} {min(torch_mib, default=float('nan')):>12.0f}")
PY
