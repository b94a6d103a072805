#!/usr/bin/env bash
# Regenerates screenshots/*.png from the real app: each scene opens the
# window under Xvfb, sets itself up as a user would (presets, edits,
# training, a sweep, a classification), saves a screenshot and closes.
# Needs xvfb (apt-get install xvfb) and a release build.
#
# Usage: scripts/screenshots.sh [scene ...]   (default: all scenes)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
mkdir -p screenshots
scenes=("$@")
if [ ${#scenes[@]} -eq 0 ]; then
    scenes=(builder highway fractal invalid training sweep classify)
fi
for scene in "${scenes[@]}"; do
    echo "== $scene"
    timeout 900 xvfb-run -a -s "-screen 0 1440x900x24" target/release/depthlab --scene "$scene" --screenshot "screenshots/$scene.png" 2>&1 \
        | grep -v XDG_RUNTIME_DIR || true
    test -s "screenshots/$scene.png"
done
