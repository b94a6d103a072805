#!/usr/bin/env python3
"""The PyTorch twin of `depthlab bench`: the same CIFAR networks and the same
training step, timed the same way, so both run side by side on one machine.

Networks (He et al. 2016, CIFAR): a 3x3 stem of 16 filters with BN-ReLU, three
stages of n basic blocks at 16/32/64 filters (stride 2 at the start of stages
2 and 3), global average pooling, a linear classifier; residual blocks use
option A shortcuts (stride + zero-padded channels), plain twins have none.
Convolutions have no bias (BN follows). The step: forward, cross-entropy,
backward, SGD (momentum 0.9, no dampening, weight decay 1e-4), then the loss
and the number of correct predictions are read back to the host, as depthlab
reads them every step.

Variants, each the way a careful PyTorch user runs it:
- `eager`: NCHW tensors, eager mode (PyTorch's default);
- `channels_last`: the model and inputs in `torch.channels_last` (NHWC),
  which oneDNN runs without reordering every convolution's tensors;
- `compile`: channels_last, and the model and the optimiser step compiled
  with `torch.compile` (inductor fuses the element-wise work around the
  convolutions); the compilation happens in the warm-up steps, untimed. If
  it fails, the entry says so (`"error"`) and has no speed.

Usage: python3 bench/pytorch_reference.py --archs plain-20,resnet-20,resnet-56
           --batch-size 128 --steps 10 --warmup 2 --device cpu
           [--variants eager,channels_last,compile] [--threads N] [--json]
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = shortcut
        self.stride = stride
        self.extra = cout - cin

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut:
            s = x
            if self.stride != 1:
                s = s[:, :, :: self.stride, :: self.stride]
            if self.extra > 0:
                s = F.pad(s, (0, 0, 0, 0, 0, self.extra))
            out = out + s
        return F.relu(out)


class CifarNet(nn.Module):
    def __init__(self, depth, shortcut, channels=3, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.stem = nn.Conv2d(channels, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks = []
        cin = 16
        for stage, cout in enumerate([16, 32, 64]):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(Block(cin, cout, stride, shortcut))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))


def build(name, channels, classes):
    family, depth = name.rsplit("-", 1)
    if family not in ("plain", "resnet"):
        raise SystemExit(f"{name}: the reference implements plain-N and resnet-N")
    return CifarNet(int(depth), family == "resnet", channels, classes)


VARIANTS = ("eager", "channels_last", "compile")
# The compiled variant needs more warm-up: the first steps compile.
COMPILE_WARMUP = 3


def bench(name, device, batch, shape, steps, warmup, variant="eager", classes=10):
    torch.manual_seed(1)
    c, h, w = shape
    model = build(name, c, classes).to(device)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    layout = torch.channels_last if variant in ("channels_last", "compile") else torch.contiguous_format
    model = model.to(memory_format=layout)
    batches = [
        (torch.randn(batch, c, h, w, device=device).to(memory_format=layout), torch.randint(0, classes, (batch,), device=device))
        for _ in range(4)
    ]
    forward, update = model, opt.step
    if variant == "compile":
        forward, update = torch.compile(model), torch.compile(opt.step)
        warmup = max(warmup, COMPILE_WARMUP)

    def step(i):
        x, y = batches[i % len(batches)]
        opt.zero_grad(set_to_none=True)
        logits = forward(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        update()
        # Read loss and accuracy back every step, as depthlab does.
        correct = (logits.argmax(1) == y).sum()
        return torch.stack([loss.detach(), correct.float()]).tolist()

    model.train()
    for i in range(warmup):
        step(i)
    # Each step ends in a read to the host, so the step is finished when
    # step() returns; the median step is robust to the odd slow one, as in
    # depthlab's harness.
    times = []
    for i in range(steps):
        started = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - started)
    secs = statistics.median(times)
    return {
        "arch": name,
        "device": device,
        "variant": variant,
        "threads": torch.get_num_threads(),
        "params": params,
        "batch_size": batch,
        "images_per_sec": batch / secs,
        "secs_per_step": secs,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "torch": torch.__version__,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="plain-20,resnet-20,resnet-56")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--input", default="3x32x32")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, cuda, or cpu,cuda")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's choice)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="eager, channels_last, compile (comma-separated)")
    p.add_argument("--tf32", choices=["default", "on", "off"], default="default",
                   help="CUDA: TF32 tensor cores for convolutions and matrix multiplies (PyTorch's default: on for cuDNN convolutions)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.tf32 != "default":
        torch.backends.cudnn.allow_tf32 = a.tf32 == "on"
        torch.backends.cuda.matmul.allow_tf32 = a.tf32 == "on"
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    shape = tuple(int(v) for v in a.input.split("x"))
    results = []
    for device in a.device.split(","):
        if device == "cuda" and not torch.cuda.is_available():
            print("cuda: not available, skipped", file=sys.stderr)
            continue
        for name in a.archs.split(","):
            for variant in a.variants.split(","):
                if variant not in VARIANTS:
                    raise SystemExit(f"{variant}: the variants are {', '.join(VARIANTS)}")
                try:
                    r = bench(name, device, a.batch_size, shape, a.steps, a.warmup, variant)
                except Exception as e:  # a failed torch.compile is a result, not the end
                    r = {"arch": name, "device": device, "variant": variant, "error": f"{type(e).__name__}: {e}"[:500],
                         "torch": torch.__version__}
                    print(f"{device} {name} {variant}: failed: {r['error']}", file=sys.stderr)
                if device == "cuda":
                    r["adapter"] = torch.cuda.get_device_name(0)
                    r["tf32"] = torch.backends.cudnn.allow_tf32
                results.append(r)
                if not a.json and "error" not in r:
                    print(f"{device:5} {name:12} {variant:14} {r['images_per_sec']:10.1f} img/s  ({r['threads']} threads)")
    if a.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
