"""Export: MINDIR and ONNX reproduce the model, padded pools are rewritten exactly, files appear atomically."""

import importlib.util
import os

import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

from mindcv.deploy.export import export_model, export_path, onnx_compatible, resolve_formats
from mindcv.errors import ConfigError
from mindcv.models import create_model
from mindcv.utils.checkpoint import save_checkpoint_atomic

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(name: str) -> nn.Cell:
    # One block per stage keeps every cell type of the family (stem, pools, shortcuts) at a fraction of the cost.
    model = create_model(name, num_classes=10, layers=(1, 1, 1, 1))
    model.set_train(False)
    return model


def _input(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class _Wrap(nn.Cell):
    def __init__(self, pool: nn.Cell) -> None:
        super().__init__()
        self.body = nn.SequentialCell([pool])

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.body(x)


@pytest.mark.parametrize(
    "pool, size",
    [
        (nn.MaxPool2d(3, 2, pad_mode="pad", padding=1), 8),
        (nn.MaxPool2d(3, 2, pad_mode="pad", padding=1), 9),
        (nn.AvgPool2d(3, 2, pad_mode="pad", padding=1, count_include_pad=True), 9),
        (nn.AvgPool2d(3, 2, pad_mode="pad", padding=1, count_include_pad=False), 8),
        (nn.AvgPool2d(2, 2, pad_mode="pad", ceil_mode=True, count_include_pad=False), 7),
        (nn.AvgPool2d(2, 2, pad_mode="pad", ceil_mode=True, count_include_pad=False), 8),
        (nn.AvgPool2d(3, 2, pad_mode="pad", padding=1, ceil_mode=True, count_include_pad=True), 10),
        (nn.AvgPool2d(3, 2, pad_mode="pad", padding=1, divisor_override=5), 9),
    ],
)
def test_onnx_pool_rewrites_equal_the_original_cells(pool, size):
    net = _Wrap(pool)
    x = ms.Tensor(_input((2, 3, size, size)))  # negative values: zero padding would change a max pool
    expected = net(x).asnumpy()
    with onnx_compatible(net, (2, 3, size, size)):
        swapped = net.body[0]
        assert swapped is not pool
        got = net(x).asnumpy()
    assert net.body[0] is pool  # restored
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_mindir_reloaded_with_graphcell_reproduces_the_model(tmp_path):
    model = _tiny("res2net50")
    x = _input((1, 3, 64, 64))
    expected = model(ms.Tensor(x)).asnumpy()
    model.set_train(True)
    (path,) = export_model(model, str(tmp_path / "r50"), (1, 3, 64, 64), "MINDIR")
    assert path == str(tmp_path / "r50.mindir")
    assert model.training  # mode restored after the eval-mode export
    got = nn.GraphCell(ms.load(path))(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert sorted(os.listdir(tmp_path)) == ["r50.mindir"]  # no temporary left behind


# v1b at 80 px: layer4's average-pool shortcut sees a 5x5 map, so its ceil_mode padding is exercised. At 32 px the
# last stage works on 1x1 maps and runs folded (SmallMapStage), so its transposes and 1x1 convolutions are exported.
@pytest.mark.parametrize("name, size", [("res2net50", 64), ("res2net50_v1b", 80), ("res2net50", 32)])
def test_onnx_runs_under_onnxruntime_with_the_models_outputs(tmp_path, name, size):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install '.[test]')")
    model = _tiny(name)
    x = _input((2, 3, size, size))
    expected = model(ms.Tensor(x)).asnumpy()
    (path,) = export_model(model, str(tmp_path / f"{name}.onnx"), x.shape, "ONNX")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    (got,) = session.run(None, {"input": x})
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    # the rewrite is temporary: the model still has MindSpore's own pooling cells
    assert isinstance(model.maxpool, nn.MaxPool2d)


def test_a_failed_export_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "model.mindir"
    target.write_bytes(b"previous export")

    def broken_export(net, *inputs, file_name, file_format, **kwargs):
        with open(file_name + ".mindir", "wb") as f:
            f.write(b"half")
        raise RuntimeError("simulated crash while writing")

    monkeypatch.setattr(ms, "export", broken_export)
    with pytest.raises(RuntimeError, match="simulated crash"):
        export_model(_tiny("res2net50"), str(tmp_path / "model"), (1, 3, 32, 32), "MINDIR")
    assert sorted(os.listdir(tmp_path)) == ["model.mindir"]
    assert target.read_bytes() == b"previous export"


def test_format_and_path_rules():
    assert resolve_formats("both") == ["MINDIR", "ONNX"]
    assert resolve_formats("onnx") == ["ONNX"]
    with pytest.raises(ConfigError, match="unknown export format"):
        resolve_formats("tflite")
    with pytest.raises(ConfigError, match="needs the Ascend backend"):
        resolve_formats("AIR")  # the tests run on CPU
    assert export_path("out/model.onnx", "MINDIR") == os.path.abspath("out/model.mindir")
    assert export_path("out/v1.2", "ONNX") == os.path.abspath("out/v1.2.onnx")


def test_export_cli_loads_the_checkpoint_and_rejects_bad_input(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("export_script", os.path.join(_ROOT, "export.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    model = create_model("res2net50", num_classes=4)
    ckpt = save_checkpoint_atomic(model, str(tmp_path / "r50.ckpt"))
    out = tmp_path / "exported" / "r50"
    argv = ["--model", "res2net50", "--ckpt_path", ckpt, "--image_size", "32", "--output", str(out)]
    assert script.main(argv) == 0
    assert capsys.readouterr().out.split() == [str(out) + ".mindir"]
    model.set_train(False)
    x = _input((1, 3, 32, 32))
    got = nn.GraphCell(ms.load(str(out) + ".mindir"))(ms.Tensor(x)).asnumpy()
    assert got.shape == (1, 4)  # num_classes read from the checkpoint
    np.testing.assert_allclose(got, model(ms.Tensor(x)).asnumpy(), rtol=1e-5, atol=1e-5)

    for bad in (["--ckpt_path", str(tmp_path / "missing.ckpt")], ["--file_format", "AIR"], ["--batch_size", "0"]):
        assert script.run_main(script.main, bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
