"""PyTorch's time for one ResNet layer of each CIFAR stage (3x3 convolution
without bias, 128 images), forward and forward + backward, in NCHW and
channels_last, and batch norm + ReLU forward + backward: the per-layer
figures beside `cargo run --release --example conv_kernels -- 128`, run
in the same sitting.

    python bench/pytorch_conv_layers.py [THREADS]
"""
import argparse
import time

import torch


def best(f, n=12):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description="PyTorch's time for one ResNet layer of each CIFAR stage")
    parser.add_argument("threads", nargs="?", type=int, default=2, help="CPU threads (default 2)")
    threads = parser.parse_args().threads
    if threads < 1:
        parser.error(f"threads must be at least 1, not {threads}")
    torch.set_num_threads(threads)
    print(f"batch 128, {torch.get_num_threads()} threads, torch {torch.__version__}")
    for c, hw in [(16, 32), (32, 16), (64, 8)]:
        flop = 2 * 128 * c * c * 9 * hw * hw
        for name, fmt in [("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)]:
            x = torch.randn(128, c, hw, hw).to(memory_format=fmt).requires_grad_(True)
            conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False).to(memory_format=fmt)
            g = torch.randn_like(conv(x))
            forward = best(lambda: conv(x))

            def both():
                x.grad = None
                conv.weight.grad = None
                conv(x).backward(g)

            both_t = best(both)
            bn = torch.nn.BatchNorm2d(c).to(memory_format=fmt)
            xb = torch.randn(128, c, hw, hw).to(memory_format=fmt).requires_grad_(True)

            def norm():
                xb.grad = None
                torch.relu(bn(xb)).backward(g)

            norm_t = best(norm)
            print(
                f"{c:3} ch {hw:2}x{hw:<2} {name:<13} forward {forward * 1e3:5.2f} ms ({flop / forward / 1e9:4.0f} GFLOP/s)"
                f"  forward+backward {both_t * 1e3:5.2f} ms ({3 * flop / both_t / 1e9:4.0f} GFLOP/s)"
                f"  batch norm+ReLU forward+backward {norm_t * 1e3:5.2f} ms"
            )


if __name__ == "__main__":
    main()
