"""Atomic checkpoint saves, strict reads and exact metadata round trips (ckpt and safetensors)."""

import errno
import glob
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from safetensors.numpy import save_file

import mindspore as ms
from mindspore import Parameter, Tensor, nn

from mindcv.errors import CheckpointError
from mindcv.utils import checkpoint as ckpt_mod
from mindcv.utils.checkpoint import (
    META_KEY,
    clean_stale_temporaries,
    is_temporary_checkpoint,
    read_checkpoint,
    save_checkpoint_atomic,
    split_checkpoint,
)

FORMATS = ["ckpt", "safetensors"]
META = {"epoch": 7, "step": 2**40 + 3, "lr": 0.001, "best_acc": 0.1 + 0.2, "arch": "res2net50", "ema": False}


class Tiny(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(4, 3)
        self.bn = nn.BatchNorm1d(3)

    def construct(self, x):
        return self.bn(self.fc(x))


def _tiny(seed: int) -> Tiny:
    """A net whose every parameter, BN statistics included, holds seed-specific random values."""
    net = Tiny()
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        p.set_data(Tensor(rng.standard_normal(p.shape).astype(np.float32)))
    return net


def _arrays(net: nn.Cell) -> dict:
    return {name: p.asnumpy().copy() for name, p in net.parameters_dict().items()}


def _listing(folder) -> list:
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_is_exact_with_metadata(tmp_path, fmt):
    net = _tiny(0)
    path = save_checkpoint_atomic(net, str(tmp_path / f"tiny.{fmt}"), append_dict=META)
    assert path == str(tmp_path / f"tiny.{fmt}") and _listing(tmp_path) == [f"tiny.{fmt}"]
    assert os.stat(path).st_mode & 0o200, "the checkpoint must be user-writable, not MindSpore's 0400"

    tensors, meta = split_checkpoint(read_checkpoint(path))
    assert meta == META
    assert type(meta["epoch"]) is int and type(meta["lr"]) is float and type(meta["ema"]) is bool
    assert set(tensors) == set(net.parameters_dict()) and all(isinstance(v, Parameter) for v in tensors.values())

    fresh = _tiny(1)
    not_loaded, unused = ms.load_param_into_net(fresh, tensors, strict_load=True)
    assert not_loaded == [] and unused == []
    expected, got = _arrays(net), _arrays(fresh)
    for name in expected:
        assert got[name].dtype == expected[name].dtype and np.array_equal(got[name], expected[name]), name


@pytest.mark.parametrize("fmt", FORMATS)
def test_tensor_and_string_metadata_edge_cases(tmp_path, fmt):
    rng_state = np.arange(6, dtype=np.uint32).reshape(2, 3)
    extra = {"rng": rng_state, "scale": Tensor(np.float32(1024.0)), "note": "", "uni": "héllo ✓"}
    path = save_checkpoint_atomic(_tiny(0), str(tmp_path / f"m.{fmt}"), append_dict=extra)
    _, meta = split_checkpoint(read_checkpoint(path))
    assert meta["note"] == "" and meta["uni"] == "héllo ✓"
    assert isinstance(meta["rng"], np.ndarray) and np.array_equal(meta["rng"], rng_state)
    assert meta["rng"].dtype == np.uint32 and float(meta["scale"]) == 1024.0


def test_list_and_dict_save_objects(tmp_path):
    net = _tiny(3)
    params = net.parameters_dict()
    as_list = [{"name": k, "data": v} for k, v in params.items()]
    as_list.append({"name": "opt.moments.fc.weight", "data": Tensor(np.ones((3, 4), np.float32))})
    a = read_checkpoint(save_checkpoint_atomic(as_list, str(tmp_path / "list.ckpt"), append_dict={"epoch": 1}))
    b = read_checkpoint(save_checkpoint_atomic(dict(params), str(tmp_path / "dict.safetensors")))
    assert "opt.moments.fc.weight" in a and set(b) == set(params)
    assert np.array_equal(b["fc.weight"].asnumpy(), params["fc.weight"].asnumpy())
    # MindSpore alone drops (or crashes on) plain Tensors in a dict; every entry must arrive.
    mixed = {"p": params["fc.bias"], "t": Tensor(np.arange(5, dtype=np.float32)), "a": np.ones(2, np.int32)}
    c = read_checkpoint(save_checkpoint_atomic(mixed, str(tmp_path / "mixed.ckpt")))
    assert set(c) == {"p", "t", "a"} and np.array_equal(c["t"].asnumpy(), np.arange(5, dtype=np.float32))


@pytest.mark.parametrize("fmt", FORMATS)
def test_overwrite_replaces_content_and_leaves_no_temporaries(tmp_path, fmt):
    path = str(tmp_path / f"last.{fmt}")
    save_checkpoint_atomic(_tiny(0), path, append_dict={"epoch": 1})
    os.chmod(path, 0o400)  # as MindSpore's own saves leave it: overwriting must still work
    second = _tiny(1)
    save_checkpoint_atomic(second, path, append_dict={"epoch": 2})
    tensors, meta = split_checkpoint(read_checkpoint(path))
    assert meta == {"epoch": 2}
    assert np.array_equal(tensors["fc.weight"].asnumpy(), second.fc.weight.asnumpy())
    assert _listing(tmp_path) == [f"last.{fmt}"]


def _failing_save(kind: str, exc: BaseException):
    """A stand-in for mindspore.save_checkpoint that writes half a file where MindSpore would, then fails."""

    def fake(save_obj, ckpt_file_name, append_dict=None, format="ckpt", **kwargs):
        target = ckpt_file_name if kind == "target" else os.path.splitext(ckpt_file_name)[0] + ".tmp"
        with open(target, "wb") as f:
            f.write(b"\x0a\x10half a checkpoint")
        raise exc

    return fake


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["target", "mindspore-tmp"])
def test_full_disk_keeps_the_old_checkpoint_byte_identical(tmp_path, monkeypatch, fmt, kind):
    path = str(tmp_path / f"best.{fmt}")
    save_checkpoint_atomic(_tiny(0), path, append_dict={"epoch": 1})
    with open(path, "rb") as f:
        before = f.read()
    monkeypatch.setattr(ms, "save_checkpoint", _failing_save(kind, OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(CheckpointError) as info:
        save_checkpoint_atomic(_tiny(1), path, append_dict={"epoch": 2})
    msg = str(info.value)
    assert path in msg and "no space left on device" in msg and "--ckpt_save_dir" in msg and "\n" not in msg
    with open(path, "rb") as f:
        assert f.read() == before
    assert _listing(tmp_path) == [f"best.{fmt}"]


def test_full_disk_reported_by_safetensors_as_text(tmp_path, monkeypatch):
    class SafetensorError(Exception):
        pass

    err = SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space" })')
    monkeypatch.setattr(ms, "save_checkpoint", _failing_save("target", err))
    with pytest.raises(CheckpointError, match="no space left on device"):
        save_checkpoint_atomic(_tiny(0), str(tmp_path / "x.safetensors"))
    assert _listing(tmp_path) == []


@pytest.mark.parametrize(
    "code, words",
    [(errno.EACCES, ["permission denied", "--ckpt_save_dir"]), (errno.EROFS, ["read-only file system"])],
)
def test_unwritable_folder(tmp_path, monkeypatch, code, words):
    folder = tmp_path / "out"
    folder.mkdir()
    if code == errno.EACCES and os.geteuid() != 0:
        os.chmod(folder, 0o555)  # a real read-only folder; root ignores the mode, so it is simulated below
    else:
        monkeypatch.setattr(ms, "save_checkpoint", _failing_save("target", OSError(code, os.strerror(code))))
    try:
        with pytest.raises(CheckpointError) as info:
            save_checkpoint_atomic(_tiny(0), str(folder / "a.ckpt"))
    finally:
        os.chmod(folder, 0o755)
    for word in words:
        assert word in str(info.value)
    assert _listing(folder) == []


def test_interrupt_during_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(ms, "save_checkpoint", _failing_save("target", KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint_atomic(_tiny(0), str(tmp_path / "a.ckpt"))
    assert _listing(tmp_path) == []


def test_bad_names_and_metadata_are_refused(tmp_path):
    net = _tiny(0)
    with pytest.raises(CheckpointError, match=r"\.ckpt or \.safetensors"):
        save_checkpoint_atomic(net, str(tmp_path / "a.pth"))
    with pytest.raises(CheckpointError, match="extension says 'ckpt'"):
        save_checkpoint_atomic(net, str(tmp_path / "a.ckpt"), format="safetensors")
    (tmp_path / "d.ckpt").mkdir()
    with pytest.raises(CheckpointError, match="folder"):
        save_checkpoint_atomic(net, str(tmp_path / "d.ckpt"))
    with pytest.raises(ValueError, match="collides"):
        save_checkpoint_atomic(net, str(tmp_path / "a.ckpt"), append_dict={"fc.weight": 1})
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint_atomic(net, str(tmp_path / "a.ckpt"), append_dict={META_KEY: "x"})
    with pytest.raises(TypeError, match="append_dict"):
        save_checkpoint_atomic(net, str(tmp_path / "a.ckpt"), append_dict={"x": [1, 2]})
    assert _listing(tmp_path) == ["d.ckpt"]


def test_temporaries_are_recognised_and_cleaned(tmp_path):
    names = {
        "old_ours": ".last.ckpt.tmp-123-0a1b2c3d.ckpt",
        "old_ms": ".last.ckpt.tmp-123-0a1b2c3d.tmp",
        "fresh": ".last.ckpt.tmp-456-4e5f6a7b.safetensors",
        "real": "last.ckpt",
        "hidden_real": ".hidden.ckpt",
    }
    for n in names.values():
        (tmp_path / n).write_bytes(b"x")
    past = time.time() - 7200
    for key in ("old_ours", "old_ms"):
        os.utime(tmp_path / names[key], (past, past))
    assert [is_temporary_checkpoint(n) for n in names.values()] == [True, True, True, False, False]
    assert glob.glob(str(tmp_path / "*.ckpt")) == [str(tmp_path / "last.ckpt")]  # the hidden temps stay out

    removed = clean_stale_temporaries(str(tmp_path), max_age_s=3600)
    assert sorted(map(os.path.basename, removed)) == sorted([names["old_ours"], names["old_ms"]])
    assert _listing(tmp_path) == sorted([names["fresh"], names["real"], names["hidden_real"]])
    clean_stale_temporaries(str(tmp_path), max_age_s=0)
    assert _listing(tmp_path) == sorted([names["real"], names["hidden_real"]])
    assert clean_stale_temporaries(str(tmp_path / "missing")) == []


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    return {fmt: save_checkpoint_atomic(_tiny(0), str(folder / f"good.{fmt}"), append_dict=META) for fmt in FORMATS}


def _expect_read_error(path, *words):
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(str(path))
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    for word in words:
        assert word in msg, f"{word!r} missing from: {msg}"


def test_read_errors_missing_folder_empty(tmp_path):
    _expect_read_error(tmp_path / "nope.ckpt", "does not exist", "--ckpt_path")
    _expect_read_error(tmp_path, "is a folder")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    _expect_read_error(tmp_path / "empty.ckpt", "empty", "re-download or re-save")


@pytest.mark.parametrize("fmt", FORMATS)
def test_read_errors_truncated(tmp_path, saved, fmt):
    with open(saved[fmt], "rb") as f:
        data = f.read()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(data[: len(data) // 2])
    _expect_read_error(cut, "corrupt or not a MindSpore checkpoint", "re-download or re-save")


@pytest.mark.parametrize("name", ["garbage.ckpt", "garbage.safetensors", "garbage.bin"])
def test_read_errors_random_bytes(tmp_path, name):
    (tmp_path / name).write_bytes(np.random.default_rng(0).bytes(4096))
    _expect_read_error(tmp_path / name, "corrupt or not a MindSpore checkpoint")


def test_read_error_unreadable(tmp_path, monkeypatch):
    path = tmp_path / "secret.ckpt"
    path.write_bytes(b"x" * 10)
    if os.geteuid() != 0:
        os.chmod(path, 0)
    else:  # root reads any file: simulate the refusal

        def deny(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))

        monkeypatch.setattr(ckpt_mod, "open", deny, raising=False)
    try:
        _expect_read_error(path, "permission denied")
    finally:
        os.chmod(path, 0o644)


def test_read_error_no_tensors(tmp_path):
    path = tmp_path / "nothing.safetensors"
    save_file({}, str(path))
    _expect_read_error(path, "re-download or re-save")


def test_read_never_returns_an_empty_dict(tmp_path, monkeypatch):
    path = tmp_path / "filtered.ckpt"
    path.write_bytes(b"x" * 10)
    monkeypatch.setattr(ms, "load_checkpoint", lambda *args, **kwargs: {})
    _expect_read_error(path, "holds no parameters")


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_extension_is_sniffed(tmp_path, saved, fmt):
    alias = tmp_path / "weights.pth"
    shutil.copyfile(saved[fmt], alias)
    tensors, meta = split_checkpoint(read_checkpoint(str(alias)))
    assert meta == META and "fc.weight" in tensors


def test_split_without_record_treats_only_strings_as_metadata(tmp_path):
    path = str(tmp_path / "upstream.ckpt")
    ms.save_checkpoint(_tiny(0), path, append_dict={"epoch_num": 5, "arch": "res2net50"})
    tensors, meta = split_checkpoint(read_checkpoint(path))
    assert meta == {"arch": "res2net50"}
    assert "epoch_num" in tensors and "fc.weight" in tensors


def test_split_rejects_a_broken_record(saved):
    d = read_checkpoint(saved["ckpt"])
    d[META_KEY] = "{not json"
    with pytest.raises(CheckpointError, match="unreadable"):
        split_checkpoint(d)
    d = read_checkpoint(saved["ckpt"])
    del d["epoch"]
    with pytest.raises(CheckpointError, match="'epoch'"):
        split_checkpoint(d)


_SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    from mindspore import Tensor
    from mindcv.utils.checkpoint import save_checkpoint_atomic

    big = {"w": Tensor(np.random.default_rng(0).standard_normal((2048, 1024)).astype(np.float32))}
    for epoch in range(1, 10000):
        save_checkpoint_atomic(big, sys.argv[1], append_dict={"epoch": epoch})
        print(epoch, flush=True)
    """)


@pytest.mark.parametrize("when", ["between-saves", "mid-write"])
def test_sigkill_while_saving_leaves_a_complete_checkpoint(tmp_path, when):
    """A writer killed with no chance to clean up, between saves or while its temporary file is being
    written, must leave the last complete checkpoint and nothing a tool would take for one."""
    path = str(tmp_path / "last.ckpt")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.Popen(
        [sys.executable, "-c", _SAVER, path], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        completed = [int(child.stdout.readline()) for _ in range(2)]  # two saves done; a third is under way
        deadline = time.monotonic() + 10
        while when == "mid-write" and time.monotonic() < deadline:
            if any(is_temporary_checkpoint(n) for n in os.listdir(tmp_path)):
                break
            time.sleep(0.001)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        completed += [int(line) for line in child.stdout.read().split()]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        child.stdout.close()
    tensors, meta = split_checkpoint(read_checkpoint(path))
    assert meta["epoch"] >= completed[-1] and tensors["w"].shape == (2048, 1024)
    leftovers = [n for n in os.listdir(tmp_path) if n != "last.ckpt"]
    assert all(is_temporary_checkpoint(n) for n in leftovers), leftovers
    if when == "mid-write":
        assert leftovers, "the kill was meant to land while a temporary file existed"
    assert glob.glob(str(tmp_path / "*.ckpt")) == [path]
    clean_stale_temporaries(str(tmp_path), max_age_s=0)
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_load_counts_page_cache_as_available(tmp_path, monkeypatch):
    """MindSpore checks a .ckpt against strictly unused memory; a machine full of page cache must still load it."""
    path = save_checkpoint_atomic(
        [{"name": "w", "data": ms.Tensor(np.ones((64, 64), np.float32))}], str(tmp_path / "a.ckpt")
    )
    real_sysconf = os.sysconf

    def little_free(name):  # one free page, as when the page cache fills the RAM
        return 1 if name == "SC_AVPHYS_PAGES" else real_sysconf(name)

    monkeypatch.setattr(os, "sysconf", little_free)
    with pytest.raises(ValueError, match="exceeds current available memory"):
        ms.load_checkpoint(path)  # MindSpore's own check refuses it
    np.testing.assert_array_equal(read_checkpoint(path)["w"].asnumpy(), np.ones((64, 64), np.float32))
