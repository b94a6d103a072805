#!/usr/bin/env bash
# Creates or completes the Python environment that runs depthlab's exported
# PyTorch models in the tests (tests/export.rs): a virtual environment in
# ~/.cache/depthlab/torch-venv (DEPTHLAB_TORCH_VENV elsewhere) with torch,
# numpy, pillow, safetensors and tensorboard (tests/tensorboard.rs reads the
# lab's event files with it). Idempotent: when they all import already,
# nothing is downloaded; otherwise only the missing packages are installed.
set -euo pipefail

venv="${DEPTHLAB_TORCH_VENV:-$HOME/.cache/depthlab/torch-venv}"
python="$venv/bin/python"

if [[ ! -x "$python" ]]; then
    echo "torch_venv: creating $venv" >&2
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi

# import name -> package name
declare -A packages=([torch]=torch [numpy]=numpy [PIL]=pillow [safetensors]=safetensors [tensorboard]=tensorboard)
missing=()
for module in torch numpy PIL safetensors tensorboard; do
    "$python" -c "import $module" >/dev/null 2>&1 || missing+=("${packages[$module]}")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
echo "torch_venv: installing ${missing[*]} into $venv" >&2
"$python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
"$python" -c "import torch, numpy, PIL, safetensors, tensorboard"
