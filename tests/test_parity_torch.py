"""Exactness against the reference PyTorch Res2Net (timm's implementation of the authors' definition).

Every convertible model gets timm's random weights with non-trivial BatchNorm statistics, is converted
with ``mindcv.convert`` and must reproduce timm's eval-mode logits to 1e-4 relative, at 224, at an
odd, non-square size (which exercises the ceil-mode average-pool shortcut of the v1b models) and at
32x32 and 16x16 (the small-map paths and the folded last stages).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[test]' to run parity tests")
timm = pytest.importorskip("timm", reason="timm is not installed: pip install -e '.[test]' to run parity tests")

import mindspore as ms  # noqa: E402

from mindcv.convert import TORCH_EQUIVALENTS, convert_state_dict  # noqa: E402
from mindcv.errors import CheckpointError  # noqa: E402
from mindcv.models import create_model  # noqa: E402
from mindcv.models.helpers import load_params_into_model  # noqa: E402

REL_TOL = 1e-4


def _timm_model(name: str, num_classes: int = 1000):
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                n = mod.num_features
                mod.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                mod.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
                mod.weight.copy_(torch.rand(n, generator=gen) * 0.5 + 0.5)
                mod.bias.copy_(torch.randn(n, generator=gen) * 0.1)
    return model.eval()


def _rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-12))


def _state_dict_np(model) -> dict:
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("ours,theirs", sorted(TORCH_EQUIVALENTS.items()))
def test_logits_match_reference(ours, theirs):
    ref_model = _timm_model(theirs)
    ms_model = create_model(ours)
    load_params_into_model(ms_model, convert_state_dict(_state_dict_np(ref_model), ours), source=theirs)
    ms_model.set_train(False)
    rng = np.random.default_rng(0)
    # 32x32 and 16x16 reach the small maps of PointwiseConv2d and SmallMapConv2d and the folded 1x1 stages.
    for shape in [(1, 3, 224, 224), (2, 3, 97, 75), (4, 3, 32, 32), (2, 3, 16, 16)]:
        x = rng.standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            ref = ref_model(torch.from_numpy(x)).numpy()
        out = ms_model(ms.Tensor(x)).asnumpy()
        assert out.shape == ref.shape
        err = _rel_err(out, ref)
        assert err < REL_TOL, f"{ours} vs timm {theirs} at {shape}: relative error {err:.2e}"


@pytest.mark.slow
def test_convert_cli_safetensors_roundtrip(tmp_path):
    """The command-line path: safetensors in, checkpoint out, loaded by create_model(checkpoint_path=...)."""
    from safetensors.numpy import save_file

    ref_model = _timm_model("res2net50d", num_classes=7)
    src = tmp_path / "res2net50d.safetensors"
    save_file(_state_dict_np(ref_model), str(src))
    out = tmp_path / "res2net50_v1b.ckpt"
    res = subprocess.run(
        [sys.executable, "-m", "mindcv.convert", "--model", "res2net50_v1b", "--src", str(src), "--out", str(out)],
        capture_output=True,
        text=True,
        env=dict(os.environ, GLOG_v="3"),
    )
    assert res.returncode == 0, res.stderr
    model = create_model("res2net50_v1b", num_classes=7, checkpoint_path=str(out))
    model.set_train(False)
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        ref = ref_model(torch.from_numpy(x)).numpy()
    assert _rel_err(model(ms.Tensor(x)).asnumpy(), ref) < REL_TOL


def test_convert_rejects_other_architecture():
    """A res2net50 state dict is not a res2net101 or a v1b model: refused, with the mismatch named."""
    sd = _state_dict_np(timm.create_model("res2net50_26w_4s", pretrained=False, num_classes=5))
    with pytest.raises(CheckpointError, match="missing"):
        convert_state_dict(sd, "res2net101")
    with pytest.raises(CheckpointError, match="does not match mindcv 'res2net50_v1b'"):
        convert_state_dict(sd, "res2net50_v1b")
    with pytest.raises(CheckpointError, match="fc.weight"):
        convert_state_dict({"conv1.weight": sd["conv1.weight"]}, "res2net50")
