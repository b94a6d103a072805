#!/usr/bin/env bash
# Wall time of a 2 x 2 depth sweep (plain and resnet at depths 8 and 14, on
# the embedded fashion-mini) run one at a time (--jobs 1) and two at a time
# (--jobs 2), REPEATS times each, alternating; prints each time, the medians
# and their ratio, and checks that both give the same sweep.csv.
#
#   scripts/bench_jobs.sh [REPEATS] [TRAINING FLAGS…]
#   scripts/bench_jobs.sh 3 --data digits --epochs 1 --max-steps 200 --batch-size 32
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-3}"
shift || true
cargo build --release --quiet
bin=target/release/depthlab
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Training flags: the arguments after REPEATS, or 60 steps of batch 64 on fashion-mini.
if (($#)); then extra=("$@"); else extra=(--epochs 1 --max-steps 60 --batch-size 64); fi
flags=(--families plain,resnet --depths 8,14 --backend cpu "${extra[@]}")
declare -A times
for r in $(seq 1 "$repeats"); do
    for jobs in 1 2; do
        out="$work/j$jobs-$r"
        start=$(date +%s.%N)
        "$bin" sweep "${flags[@]}" --jobs "$jobs" --out "$out" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
        end=$(date +%s.%N)
        t=$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')
        times[$jobs]+="$t "
        printf 'repeat %d  --jobs %d  %.2f s\n' "$r" "$jobs" "$t"
    done
    cmp -s "$work/j1-$r/sweep.csv" "$work/j2-$r/sweep.csv" || { echo "sweep.csv differs between --jobs 1 and 2" >&2; exit 1; }
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
m1=$(echo "${times[1]}" | median)
m2=$(echo "${times[2]}" | median)
printf 'cores %d  median --jobs 1 %.2f s  --jobs 2 %.2f s  ratio %.2f  (same sweep.csv)\n' "$(nproc)" "$m1" "$m2" "$(awk -v a="$m1" -v b="$m2" 'BEGIN {print b / a}')"
