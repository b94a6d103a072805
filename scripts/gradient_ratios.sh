#!/usr/bin/env bash
# The ratio of the last block's output-gradient norm to the first block's, at
# initialisation (the probe of step 0, batch 128 of fashion-mini), for the
# nets the lab's claims rest on: deep sigmoid MLPs, plain vs highway, and the
# CIFAR ResNet with and without its residual shortcuts and batch norm.
#
# Usage: scripts/gradient_ratios.sh   (DEPTHLAB_BIN=path to use a built binary)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${DEPTHLAB_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build --release
    BIN=target/release/depthlab
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ratio() { # name, then train flags
    local name=$1; shift
    "$BIN" train --backend cpu --data fashion-mini --max-steps 1 --probe-every 1 --batch-size 128 \
        --test-examples 100 --seed 1 --out "$work/$name" "$@" >/dev/null 2>&1
    # gradients.csv: step,layer_index,layer_name,weight_grad_norm,output_grad_norm
    awk -F, -v name="$name" 'NR > 1 && $1 == 0 && $5 != "" {
            if (first == "") first = $5; last = $5
        }
        END { printf "%-34s first %.3e  last %.3e  last/first %.3e\n", name, first, last, last / first }' \
        "$work/$name/gradients.csv"
}

ratio "plain-mlp-30 sigmoid standard" --arch plain-mlp-30 --activation sigmoid --init standard
ratio "highway-mlp-30 sigmoid standard" --arch highway-mlp-30 --activation sigmoid --init standard
for arch in plain-56 resnet-56; do
    ratio "$arch BN" --arch "$arch"
    ratio "$arch no BN" --arch "$arch" --norm none
done
