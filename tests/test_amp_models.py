"""Mixed precision on every registered model (one block per stage) at a small input (32 px, as for CIFAR), where the
small-map fast paths run: O1-O3 give a finite loss close to float32's and finite gradients, and a compiled train step
runs at each level."""

import numpy as np
import pytest

import mindspore as ms

from mindcv.engine.train_step import TrainStep, mixed_precision
from mindcv.loss import create_loss
from mindcv.models import create_model, list_models
from mindcv.optim import create_optimizer

LEVELS = ("O1", "O2", "O3")
# One block per stage keeps every cell kind of each model (stem, widths, scales, cardinality, shortcuts); the full
# depths only repeat those cells, at minutes of CI each.
SHALLOW = dict(num_classes=4, layers=(1, 1, 1, 1))


def _batch(n: int = 8, size: int = 32, classes: int = 4):
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.random((n, 3, size, size), dtype=np.float32))
    return x, ms.Tensor(np.arange(n, dtype=np.int32) % classes)


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_amp_levels_on_every_model_at_32px(name):
    """Eager forward and backward (PyNative, so no graph compile per model and level) from the same weights."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    x, y = _batch()
    loss_fn = create_loss("CE")
    ms.set_seed(0)
    reference = create_model(name, **SHALLOW)
    # Training-mode BatchNorm normalises with the batch's statistics: with fresh moving statistics (0 and 1) eval mode
    # would not normalise at all, and a deep random net's activations would overflow float16 whatever the code does.
    reference.set_train(True)
    expected = float(loss_fn(reference(x), y).asnumpy())
    for level in LEVELS:
        net = create_model(name, **SHALLOW)
        ms.load_param_into_net(net, {p.name: p.clone() for p in reference.get_parameters()}, strict_load=True)
        net.set_train(True)
        amp = mixed_precision(net, level)
        value_and_grad = ms.value_and_grad(lambda a, b: loss_fn(amp(a), b), None, net.trainable_params())
        loss, grads = value_and_grad(x, y)
        loss = float(loss.asnumpy())
        assert amp(x).dtype == ms.float32, (name, level)
        # float16 convolutions feeding BatchNorms over 8 values (the 1x1 maps of the last stage) move the loss by up to
        # ~10 % against float32 here; the bound only catches a broken path (a wrong dtype or a garbage result).
        assert np.isfinite(loss) and abs(loss - expected) <= 0.5 * abs(expected) + 0.5, (name, level, loss, expected)
        bad = [p.name for p, g in zip(net.trainable_params(), grads) if not np.isfinite(g.asnumpy()).all()]
        assert not bad, (name, level, bad[:3])


@pytest.mark.slow
@pytest.mark.parametrize("level", ["O1"])
def test_compiled_amp_train_step_at_32px(level):
    """The compiled step (Graph mode) with our cell-marking O1: finite losses, and the weights move. (O2 and O3 are
    compiled by tests/test_recipes.py, which trains the GPU and Ascend recipes at 32 px.)"""
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(0)
    net = create_model("res2net50", num_classes=4)
    before = net.classifier.weight.asnumpy().copy()
    step = TrainStep(net, create_loss("CE"), create_optimizer(net, "momentum", lr=0.01), amp_level=level)
    x, y = _batch()
    losses = [float(step(x, y)[0].asnumpy()) for _ in range(3)]
    assert np.all(np.isfinite(losses)), losses
    assert not np.array_equal(net.classifier.weight.asnumpy(), before)
