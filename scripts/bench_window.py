#!/usr/bin/env python3
"""Training in the window against training on the command line.

For each net, trains the same run (same preset, data, steps and defaults)
once with `depthlab train` and once from the window's Train tab
(`depthlab --scene bench-NET` under Xvfb), and reports:

- images per second of each (summary.json's `images_per_sec`: training
  steps only, the first step and evaluations excluded) and their ratio;
- the CPU share of the window's UI thread (the process's main thread) and
  of the software rasteriser's threads (llvmpipe under Xvfb), sampled from
  /proc over SAMPLE_SECS while the run trains and over SAMPLE_SECS after it
  has finished (the idle window);
- frames drawn per second while it trains and their median and p99 frame
  time (the window's DEPTHLAB_FRAME_LOG; eframe's CPU time per frame, the
  frame that starts the run left out);
- how soon a click is answered while it trains (resnet-1202 only): clicks
  on the plots (X's XTest extension, Debian: libxtst6), each timed from
  just before the click to the end of the first frame whose UI started
  after it.

Needs xvfb-run (Debian: xvfb), libxtst6 and a release build. Usage:

    scripts/bench_window.py [--steps N] [--backend cpu|wgpu] [--out FILE.json] [NET ...]

With --backend wgpu both train on the GPU through wgpu (the window and the
run then share the device); without a GPU that is lavapipe, the software
Vulkan adapter, on the same cores.

NET is one of plain-8, resnet-20, resnet-110, resnet-1202 (default: the
first three). Prints a table and writes JSON (default
docs/results/cpu-2core/window.json; rows of nets not run this time are
kept).
"""

import argparse
import ctypes
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("DEPTHLAB", os.path.join(ROOT, "target", "release", "depthlab"))
SAMPLE_SECS = 10.0
# Steps for each net: long enough that the timed part dominates.
DEFAULT_STEPS = {"plain-8": 600, "resnet-20": 200, "resnet-110": 60, "resnet-1202": 12}
# Settings beyond the defaults (the window's bench scene uses the same):
# ResNet-1202 diverges at the default init and batch 64.
EXTRA = {"resnet-1202": ["--residual-init", "zero", "--batch-size", "32"]}
TICKS = os.sysconf("SC_CLK_TCK")
# Clicks while each net trains: on the deepest net only, whose frames are
# the heaviest (each click redraws the window, which on a software renderer
# takes CPU from training: the other nets' throughput is measured without).
CLICKS = {"resnet-1202": 10}
# Where to click in the 1440x900 screen: the middle of the Train tab's plots.
CLICK_AT = (720, 450)


def thread_ticks(pid, tid):
    """utime + stime of one thread, in clock ticks (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def rasteriser_threads(pid):
    """The software renderer's threads (Mesa's llvmpipe / lavapipe)."""
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().startswith(("llvmpipe", "lavapipe")):
                    found.append(int(tid))
        except FileNotFoundError:
            pass
    return found


def cpu_shares(pid, secs):
    """CPU time over `secs` of wall time, as a fraction of one core, of the
    UI thread (the main thread) and of the rasteriser threads together."""
    groups = [[pid], rasteriser_threads(pid)]
    before = [[thread_ticks(pid, t) for t in g] for g in groups]
    started = time.monotonic()
    time.sleep(secs)
    after = [[thread_ticks(pid, t) for t in g] for g in groups]
    wall = time.monotonic() - started
    shares = []
    for b, a in zip(before, after):
        pairs = [(x, y) for x, y in zip(b, a) if x is not None and y is not None]
        shares.append(sum(y - x for x, y in pairs) / TICKS / wall if pairs else None)
    return shares


def summary(run_dir):
    path = os.path.join(run_dir, "summary.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def command_line(net, steps, work, backend):
    out = os.path.join(work, f"cli-{net}")
    subprocess.run(
        [BINARY, "train", "--arch", net, "--max-steps", str(steps), "--backend", backend, "--overwrite", "--out", out] + EXTRA.get(net, []),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return summary(out)


def descendants(pid):
    """Every process below `pid`."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(c) for c in children] + [d for c in children for d in descendants(c)]


def depthlab_pid(parent):
    """The depthlab process xvfb-run started."""
    for _ in range(300):
        for pid in descendants(parent):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == os.path.basename(BINARY)[:15]:
                        return pid
            except FileNotFoundError:
                pass
        time.sleep(0.1)
    raise RuntimeError("the window's process did not start")


def read_frames(path):
    try:
        with open(path) as f:
            return [line.split(",") for line in f.read().splitlines()[1:]]
    except FileNotFoundError:
        return None


def frame_times(path):
    """(frames per second, median ms, p99 ms) of the frames drawn while the
    run trained, from the window's frame log."""
    rows = read_frames(path)
    if rows is None:
        return None, None, None
    # The first training frame is the one that started the run (the click's
    # own work, building the net): not a frame drawn while it trains.
    training = sorted(float(r[0]) * 1000 for r in [r for r in rows if r[2] == "1"][1:])
    if not training:
        return None, None, None
    at = lambda q: training[round((len(training) - 1) * q)]
    return len(training), at(0.5), at(0.99)


def click_latencies(path, clicks):
    """Milliseconds from each click to the end of the frame that answered
    it: the first frame whose UI started after the click (its whole time is
    the next row's frame_secs)."""
    rows = read_frames(path) or []
    started = [float(r[4]) for r in rows]
    out = []
    for t in clicks:
        i = next((i for i, s in enumerate(started) if s >= t), None)
        if i is None:
            continue
        whole = float(rows[i + 1][0]) if i + 1 < len(rows) else float(rows[i][1])
        out.append((started[i] - t + whole) * 1000)
    return out


def click(pid, n):
    """Click n times, a second apart, on the window's display, through the
    X server's XTest extension (no process started per click, so the time
    taken just before each click is when the server gets it); those times."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
    if b"XAUTHORITY" in env:
        os.environ["XAUTHORITY"] = env[b"XAUTHORITY"].decode()
    x11 = ctypes.cdll.LoadLibrary("libX11.so.6")
    xtst = ctypes.cdll.LoadLibrary("libXtst.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    xtst.XTestFakeMotionEvent.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_ulong]
    xtst.XTestFakeButtonEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
    display = x11.XOpenDisplay(env[b"DISPLAY"])
    if not display:
        raise RuntimeError("cannot open the window's X display")
    try:
        xtst.XTestFakeMotionEvent(display, -1, CLICK_AT[0], CLICK_AT[1], 0)
        x11.XFlush(display)
        times = []
        for _ in range(n):
            time.sleep(1.0)
            times.append(time.time())
            xtst.XTestFakeButtonEvent(display, 1, 1, 0)
            xtst.XTestFakeButtonEvent(display, 1, 0, 0)
            x11.XFlush(display)
        return times
    finally:
        x11.XCloseDisplay(display)


def window(net, steps, work, backend):
    log = os.path.join(work, f"frames-{net}.csv")
    env = dict(os.environ, DEPTHLAB_BENCH_STEPS=str(steps), DEPTHLAB_FRAME_LOG=log, DEPTHLAB_BENCH_BACKEND=backend)
    xvfb = subprocess.Popen(
        ["xvfb-run", "-a", "-s", "-screen 0 1440x900x24", BINARY, "--scene", f"bench-{net}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pid = depthlab_pid(xvfb.pid)
        runs = os.path.join(tempfile.gettempdir(), f"depthlab-scene-{pid}")
        # Wait until the run has trained a fifth of its steps.
        deadline = time.monotonic() + 3600
        run_dir = None
        while time.monotonic() < deadline:
            found = [d for d in glob.glob(os.path.join(runs, "*")) if os.path.isfile(os.path.join(d, "metrics.csv"))]
            if found:
                run_dir = found[0]
                with open(os.path.join(run_dir, "metrics.csv")) as f:
                    if sum(1 for _ in f) > steps // 5 + 1:
                        break
            time.sleep(0.2)
        if run_dir is None:
            raise RuntimeError("the window did not start training")
        training = cpu_shares(pid, min(SAMPLE_SECS, max(1.0, steps_left_secs(run_dir, steps))))
        # Clicks after the CPU sample, while the run still trains.
        left = steps_left_secs(run_dir, steps) / 0.8
        clicks = click(pid, min(CLICKS.get(net, 0), int(left) - 1)) if left > 2 and CLICKS.get(net) else []
        while (s := summary(run_dir)) is None or s.get("status") == "running":
            time.sleep(0.2)
        # The window shows the run's end at its next data redraw (at most 3 s).
        time.sleep(4.0)
        idle = cpu_shares(pid, SAMPLE_SECS)
        # The scene closes itself a while after the run (writing its frame log).
        xvfb.wait(timeout=120)
        training_secs = s.get("wall_secs") or 0
        return s, training, idle, frame_times(log), training_secs, click_latencies(log, clicks)
    finally:
        # xvfb-run does not pass a terminate on to the window: end it first.
        for child in descendants(xvfb.pid):
            try:
                os.kill(child, 15)
            except ProcessLookupError:
                pass
        if xvfb.poll() is None:
            xvfb.terminate()
            try:
                xvfb.wait(timeout=10)
            except subprocess.TimeoutExpired:
                xvfb.kill()


def steps_left_secs(run_dir, steps):
    """About how long the run has left to train (so the sample stays inside it)."""
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        rows = [line.split(",") for line in f.read().splitlines()[1:] if ",train," in line]
    if len(rows) < 2:
        return SAMPLE_SECS
    done, elapsed = int(rows[-1][0]) + 1, float(rows[-1][6])
    return elapsed / done * (steps - done) * 0.8


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("nets", nargs="*", default=["plain-8", "resnet-20", "resnet-110"])
    parser.add_argument("--steps", type=int, help="steps per run (default: per net)")
    parser.add_argument("--backend", choices=["cpu", "wgpu"], default="cpu", help="where both train (default: cpu)")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "cpu-2core", "window.json"))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as work:
        for net in args.nets:
            steps = args.steps or DEFAULT_STEPS.get(net, 100)
            cli = command_line(net, steps, work, args.backend)
            s, training, idle, (frames, median_ms, p99_ms), wall, clicks = window(net, steps, work, args.backend)
            row = {
                "net": net,
                "backend": args.backend,
                "steps": steps,
                "cli_images_per_sec": cli and cli.get("images_per_sec"),
                "window_images_per_sec": s.get("images_per_sec"),
                "ui_thread_cpu_training": training[0],
                "rasteriser_cpu_training": training[1],
                "ui_thread_cpu_idle": idle[0],
                "rasteriser_cpu_idle": idle[1],
                "frames_while_training": frames,
                "frames_per_sec_training": frames / wall if frames and wall else None,
                "frame_ms_median": median_ms,
                "frame_ms_p99": p99_ms,
                "click_answered_ms": clicks,
            }
            if row["cli_images_per_sec"] and row["window_images_per_sec"]:
                row["ratio"] = row["window_images_per_sec"] / row["cli_images_per_sec"]
            results.append(row)
            fmt = lambda v, spec: "-" if v is None else format(v, spec)
            pct = lambda v: fmt(v if v is None else v * 100, "5.1f")
            print(
                f"{net:12} {args.backend:4} {steps:5} steps  command line {fmt(row['cli_images_per_sec'], '7.1f')} img/s  "
                f"window {fmt(row['window_images_per_sec'], '7.1f')} img/s ({fmt(row.get('ratio'), '.0%')})  "
                f"training: UI thread {pct(training[0])} %, rasteriser {pct(training[1])} % of a core, "
                f"{fmt(row['frames_per_sec_training'], '.1f')} frames/s, p99 {fmt(p99_ms, '.1f')} ms, "
                f"clicks answered in {fmt(max(clicks) if clicks else None, '.0f')} ms at most  "
                f"idle: UI thread {pct(idle[0])} %, rasteriser {pct(idle[1])} %",
                flush=True,
            )
    # Nets not run this time keep their earlier rows.
    try:
        with open(args.out) as f:
            earlier = [r for r in json.load(f)["runs"] if (r["net"], r.get("backend", "cpu")) not in {(n, args.backend) for n in args.nets}]
    except (FileNotFoundError, ValueError, KeyError):
        earlier = []
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        runs = earlier + results
        json.dump({"machine": f"{os.cpu_count()} cores", "sample_secs": SAMPLE_SECS, "runs": runs}, f, indent=2)
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
