#!/usr/bin/env bash
# depthlab on a machine with an NVIDIA GPU, in one command:
#   1. the training benchmark (plain-20, resnet-20, resnet-56; batch 128 of
#      3x32x32) on wgpu (Vulkan) and on the CPU backend, next to the PyTorch
#      reference on CUDA and on the CPU, with the ratios;
#   2. the same seed trained for 20 steps on wgpu and on the CPU: the losses
#      must agree;
#   3. ResNet-20 trained on fashion-mini for 400 steps on the GPU;
#   4. the CPU backend's scaling: resnet-20 on 1, 2, 4, 8 and all cores
#      (--threads), next to PyTorch on as many threads.
#
# Usage: scripts/gpu_check.sh            (builds depthlab with cargo first)
#        DEPTHLAB_BIN=path/to/depthlab PYTHON=python3 OUT=dir scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check}"
mkdir -p "$OUT"
PYTHON="${PYTHON:-python3}"

# A Vulkan loader, when the machine has none (Debian packages in .gl/).
if ! ldconfig -p | grep -q 'libvulkan.so.1' && compgen -G ".gl/*.deb" >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ]; then
    export VK_DRIVER_FILES="$nvidia_icd"
fi

BIN="${DEPTHLAB_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build --release
    BIN=target/release/depthlab
fi

(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true) | tee "$OUT/gpu.txt"
nproc | sed 's/^/cpu cores: /' | tee -a "$OUT/gpu.txt"

echo "== benchmark"
"$BIN" bench --backends wgpu,cpu --pytorch --python "$PYTHON" --steps 30 --warmup 5 --out "$OUT/bench.json" 2>&1 | tee "$OUT/bench.txt"

echo "== same seed on wgpu and on the CPU"
for b in wgpu cpu; do
    rm -rf "$OUT/agree-$b"
    "$BIN" train --arch resnet-20 --backend "$b" --data fashion-mini --max-steps 20 --epochs 1 --probe-every 0 \
        --no-augment --seed 3 --test-examples 200 --out "$OUT/agree-$b" 2>&1 | tail -n 1
done
paste -d, <(grep ',train,' "$OUT/agree-wgpu/metrics.csv" | cut -d, -f1,4) <(grep ',train,' "$OUT/agree-cpu/metrics.csv" | cut -d, -f4) \
    | awk -F, 'BEGIN { worst = 0 } { d = $2 - $3; if (d < 0) d = -d; if (d > worst) worst = d; if (NR <= 5) printf "step %s loss wgpu %s cpu %s\n", $1, $2, $3 }
               END { printf "largest loss difference over %d steps: %g\n", NR, worst }' | tee "$OUT/agree.txt"

echo "== ResNet-20 on fashion-mini, GPU"
rm -rf "$OUT/run-gpu"
"$BIN" train --arch resnet-20 --backend wgpu --data fashion-mini --epochs 5 --max-steps 400 --schedule cosine --lr 0.1 \
    --probe-every 10 --out "$OUT/run-gpu" 2>&1 | grep -v '^\[' | tail -n 8 | tee "$OUT/train.txt"

echo "== CPU scaling with --threads (resnet-20)"
for t in 1 2 4 8 $(nproc); do
    "$BIN" bench --archs resnet-20 --backends cpu --threads "$t" --pytorch --python "$PYTHON" --steps 10 --warmup 2 \
        --out "$OUT/threads-$t.json" 2>&1 | grep -E '^cpu +resnet-20 .*x ' | sed "s/^/threads $t: /"
done | tee "$OUT/threads.txt"
