"""How far a float32 training step lands from the same step in float64, in PyTorch.

plain-20 (the reference net of pytorch_reference.py) at its initialisation,
one batch of 128 random 1x28x28 images, cross-entropy: the relative error of
the first and last convolutions' weight gradients, float32 (NCHW and
channels_last) against float64, and float64 against itself with the input
moved by ~1e-7 relative (half a float32 rounding step). With ReLU every
figure sits at 1e-3..1e-2: a pre-activation within rounding of zero switches
its ReLU, so the gradient itself is that sensitive. With --activation tanh
the step is smooth and float32 lands within ~1e-5.

  python bench/pytorch_float64.py [--activation relu|tanh] [--seeds 4]
"""
import argparse
import copy
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import build  # noqa: E402


def weight_grads(model, x, y, channels_last=False):
    model.train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    return [p.grad.detach().double() for p in model.parameters() if p.dim() == 4]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--activation", choices=["relu", "tanh"], default="relu")
    p.add_argument("--seeds", type=int, default=4)
    args = p.parse_args()
    torch.set_num_threads(2)
    if args.activation == "tanh":
        # The reference nets call F.relu at run time.
        torch.nn.functional.relu = torch.tanh
    rel = lambda a, b: ((a - b).norm() / b.norm()).item()
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        net = build("plain-20", 1, 10)
        x = torch.randn(128, 1, 28, 28)
        y = torch.randint(0, 10, (128,))
        g64 = weight_grads(copy.deepcopy(net).double(), x.double(), y)
        g32 = weight_grads(copy.deepcopy(net), x, y)
        gcl = weight_grads(copy.deepcopy(net), x, y, channels_last=True)
        moved = x.double() * (1 + 1e-7 * torch.randn(x.shape, dtype=torch.float64))
        g64m = weight_grads(copy.deepcopy(net).double(), moved, y)
        print(
            f"seed {seed}: first conv: float32 {rel(g32[0], g64[0]):.2e}, channels_last {rel(gcl[0], g64[0]):.2e}, "
            f"float64 with the input moved {rel(g64m[0], g64[0]):.2e}; last conv: float32 {rel(g32[-1], g64[-1]):.2e}"
        )


if __name__ == "__main__":
    main()
