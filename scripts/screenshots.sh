#!/usr/bin/env bash
# Regenerates screenshots/*.png from the real app: each scene opens the
# window under Xvfb, sets itself up as a user would (presets, edits,
# training, a sweep, a classification), saves a screenshot and closes.
# Needs xvfb (apt-get install xvfb) and a release build.
#
# Usage: scripts/screenshots.sh [scene[@WIDTHxHEIGHT] ...]   (default: all scenes)
# A scene with a size is saved as screenshots/SCENE-WIDTH.png.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
mkdir -p screenshots
scenes=("$@")
if [ ${#scenes[@]} -eq 0 ]; then
    scenes=(builder highway fractal invalid training playground sweep comparison comparison@1024x700 reopened lesson@1280x720 why-lesion why-paths why-landscape classify thousand)
fi
for entry in "${scenes[@]}"; do
    scene=${entry%@*}
    size=1440x900
    out="screenshots/$scene.png"
    if [[ $entry == *@* ]]; then
        size=${entry#*@}
        out="screenshots/$scene-${size%x*}.png"
    fi
    echo "== $scene at $size"
    timeout 900 xvfb-run -a -s "-screen 0 ${size}x24" target/release/depthlab --scene "$scene" --window-size "$size" --screenshot "$out" 2>&1 \
        | grep -v XDG_RUNTIME_DIR || true
    test -s "$out"
done
