"""A tiny conv net and batch for optimizer and train-step tests (3x6x6 inputs, 3 classes)."""

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn


def tiny_net(bn: bool = True) -> nn.Cell:
    """Conv (with bias) [+ BN] + ReLU + Dense, seeded, in training mode."""
    ms.set_seed(0)
    layers = [nn.Conv2d(3, 4, 3, has_bias=True)] + ([nn.BatchNorm2d(4)] if bn else [])
    net = nn.SequentialCell(layers + [nn.ReLU(), nn.Flatten(), nn.Dense(4 * 6 * 6, 3)])
    net.set_train(True)
    return net


def tiny_batch(n: int = 8, seed: int = 0):
    """``n`` random 3x6x6 images and labels in [0, 3)."""
    rng = np.random.default_rng(seed)
    return Tensor(rng.normal(size=(n, 3, 6, 6)).astype(np.float32)), Tensor(rng.integers(0, 3, n).astype(np.int32))
