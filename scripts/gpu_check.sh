#!/usr/bin/env bash
# depthlab on a machine with an NVIDIA GPU, in one command of under ten
# minutes (figures for docs/BENCHMARKS.md, "GPU convolution kernels"):
#   1. training speed on wgpu (plain-20, resnet-20, resnet-56 at batch 128
#      of 3x32x32; resnet-1202 at batch 32), with the probe overhead and the
#      convolution kernel chosen per shape (the lab's or burn's, timed), next
#      to PyTorch on CUDA with TF32 off and on (eager and channels_last);
#   2. resnet-20 with burn's convolutions only (DEPTHLAB_GPU_KERNELS=burn)
#      and with the lab's only, for the kernels' share of the step;
#   3. the same seed trained for 20 steps on wgpu (the lab's kernels) and on
#      the CPU: the losses must agree to 1e-3;
#   4. which shader compiler ran (wgpu<spirv> or wgpu<wgsl>), and resnet-20
#      on a build with SPIR-V when DEPTHLAB_BIN_SPIRV names one.
# Everything lands in $OUT (JSON and text).
#
# Usage: scripts/gpu_check.sh            (builds depthlab with cargo first)
#        DEPTHLAB_BIN=path/to/depthlab PYTHON=python3 OUT=dir scripts/gpu_check.sh
# To carry a build to a machine that cannot build it in time: the stripped
# release binary is about 120 MiB, 39 MiB gzipped, e.g.
#   mkdir -p .gpu && strip -o .gpu/depthlab target/release/depthlab && gzip -f .gpu/depthlab
# (with .gpu/ in .git/info/exclude), then there:
#   gunzip -c .gpu/depthlab.gz >/tmp/depthlab && chmod +x /tmp/depthlab && DEPTHLAB_BIN=/tmp/depthlab scripts/gpu_check.sh
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
have_torch=0
"$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && have_torch=1
echo "PyTorch with CUDA: $have_torch" | tee -a "$OUT/gpu.txt"

bench() { # name, batch, archs
    timeout 240 "$BIN" bench --backends wgpu --archs "$3" --batch-size "$2" --steps 20 --warmup 3 \
        --out "$OUT/$1.json" 2>&1 | grep -v XDG_RUNTIME | tee "$OUT/$1.txt"
}
torch() { # name, batch, archs, tf32 (on, off or default)
    [ "$have_torch" = 1 ] || return 0
    timeout 150 "$PYTHON" bench/pytorch_reference.py --archs "$3" --batch-size "$2" --device cuda --tf32 "$4" \
        --variants eager,channels_last --steps 20 --warmup 3 --json >"$OUT/$1.json"
    "$PYTHON" -c 'import json, sys
for r in json.load(open(sys.argv[1])):
    print(r["arch"], r["variant"], "tf32" if r.get("tf32") else "fp32", "%.1f img/s" % r["images_per_sec"] if "images_per_sec" in r else r.get("error"))' \
        "$OUT/$1.json" | tee "$OUT/$1.txt"
}

echo "== 1. wgpu, batch 128 (ratios: depthlab's img/s over PyTorch's, from the JSON)"
bench bench-128 128 plain-20,resnet-20,resnet-56
echo "== PyTorch CUDA, TF32 off, then on (its default for convolutions)"
torch torch-128-fp32 128 plain-20,resnet-20,resnet-56 off
torch torch-128-tf32 128 plain-20,resnet-20,resnet-56 on
echo "== resnet-1202, batch 32"
bench bench-1202 32 resnet-1202
torch torch-1202 32 resnet-1202 off

echo "== 2. resnet-20 on burn's convolutions only, then on the lab's only"
DEPTHLAB_GPU_KERNELS=burn timeout 90 "$BIN" bench --backends wgpu --archs resnet-20 --steps 20 --warmup 3 \
    --out "$OUT/burn-only.json" 2>&1 | grep '^wgpu' | tee "$OUT/burn-only.txt"
DEPTHLAB_GPU_KERNELS=lab timeout 90 "$BIN" bench --backends wgpu --archs resnet-20 --steps 20 --warmup 3 \
    --out "$OUT/lab-only.json" 2>&1 | grep '^wgpu' | tee "$OUT/lab-only.txt"

echo "== 3. the same seed on wgpu and on the CPU"
for b in wgpu cpu; do
    rm -rf "$OUT/agree-$b"
    DEPTHLAB_GPU_KERNELS=lab timeout 120 "$BIN" train --arch resnet-20 --backend "$b" --data fashion-mini --max-steps 20 \
        --epochs 1 --probe-every 0 --no-augment --seed 3 --test-examples 200 --out "$OUT/agree-$b" 2>&1 | tail -n 1
done
paste -d, <(grep ',train,' "$OUT/agree-wgpu/metrics.csv" | cut -d, -f1,4) <(grep ',train,' "$OUT/agree-cpu/metrics.csv" | cut -d, -f4) \
    | awk -F, 'BEGIN { worst = 0 } { d = $2 - $3; if (d < 0) d = -d; if (d > worst) worst = d }
               END { printf "largest loss difference over %d steps: %g\n", NR, worst }' | tee "$OUT/agree.txt"
rm -rf "$OUT/agree-wgpu" "$OUT/agree-cpu"

echo "== 4. the shader compiler"
grep -h -o 'wgpu<[a-z]*>' "$OUT"/bench-128.txt | sort -u | tee "$OUT/compiler.txt"
# A second build with SPIR-V (cargo build --release --features spirv), when given.
if [ -n "${DEPTHLAB_BIN_SPIRV:-}" ]; then
    timeout 90 "$DEPTHLAB_BIN_SPIRV" bench --backends wgpu --archs resnet-20 --steps 20 --warmup 3 \
        --out "$OUT/spirv.json" 2>&1 | grep '^wgpu' | tee "$OUT/spirv.txt"
fi
