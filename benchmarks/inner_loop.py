"""Time one training step of SetRefiner (forward + backward through r inner steps) with
the SetEncoder's per-element MLP as nn.Linear (ours) and as Conv1d(kernel_size=1) (the
official code), on the CPU, with the inner gradient by autograd (the official code's way,
whose double backward is where the two layer types differ; the first-order gradient needs
the Linear layers).

    python benchmarks/inner_loop.py [--batch 64] [--elements 25] [--dim 24] [--steps 5] [--repeats 5]
"""
import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch
from torch import nn

from benchmarks.timing import median_seconds
from srn import SetEncoder, SetRefiner


class Conv1dMLP(nn.Module):
    """The official FSEncoder's MLP: Conv1d(kernel_size=1) layers on [B, C, N]."""

    def __init__(self, linear_mlp: nn.Sequential):
        super().__init__()
        layers = []
        for layer in linear_mlp:
            if isinstance(layer, nn.Linear):
                conv = nn.Conv1d(layer.in_features, layer.out_features, 1)
                conv.weight.data.copy_(layer.weight.data.unsqueeze(-1))
                conv.bias.data.copy_(layer.bias.data)
                layers.append(conv)
            else:
                layers.append(layer)
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


def training_step_seconds(refiner: SetRefiner, s0: torch.Tensor, z: torch.Tensor, repeats: int) -> float:
    """Median seconds of one forward + backward."""
    return median_seconds(lambda: refiner(s0, z).pow(2).sum().backward(), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--elements", type=int, default=25)
    parser.add_argument("--dim", type=int, default=24)
    parser.add_argument("--embedding", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    encoder = SetEncoder(args.dim, args.embedding)
    s0 = torch.randn(args.batch, args.elements, args.dim, requires_grad=True)
    z = torch.randn(args.batch, args.embedding, requires_grad=True)
    linear = training_step_seconds(SetRefiner(encoder, args.steps, 0.1, gradient="autograd"), s0, z, args.repeats)
    encoder.mlp = Conv1dMLP(encoder.mlp)
    conv = training_step_seconds(SetRefiner(encoder, args.steps, 0.1, gradient="autograd"), s0, z, args.repeats)
    print(f"B={args.batch} N={args.elements} D={args.dim} E={args.embedding} r={args.steps} "
          f"threads={torch.get_num_threads()}")
    print(f"nn.Linear MLP: {linear * 1000:.1f} ms per training step")
    print(f"Conv1d MLP:    {conv * 1000:.1f} ms per training step ({conv / linear:.1f}x)")


if __name__ == "__main__":
    main()
