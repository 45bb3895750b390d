"""CIFAR-10/100: reading the official binary layout, validation, sharding and the download path.

MindSpore's CIFAR readers accept only files with the official record counts, so the session fixture
writes full-size files (184 MB per variant, in about a second with NumPy). Each record carries its
global index in the first two red pixels and a label-dependent grey elsewhere, so that tests can tell
records apart and the data compresses well (the served archive is a few MB).

Downloads go to a local HTTPS server (tests/httpserver.py) through the ``mirror`` argument or the
``MINDCV_DATASET_MIRROR`` variable, with the expected MD5 patched to that of the test archive.
"""

import dataclasses
import hashlib
import io
import os
import shutil
import tarfile
import threading

import numpy as np
import pytest
from httpserver import LocalServer, client_ssl_context

from mindcv.data import cifar, create_dataset, create_loader, create_transforms, dataset_info
from mindcv.errors import DatasetError, DownloadError

C10 = cifar.CIFAR_SPECS["cifar10"]
C100 = cifar.CIFAR_SPECS["cifar100"]


def _records(start, count, label_bytes, fine):
    idx = np.arange(start, start + count)
    labels = (idx % 100) if fine else (idx % 10)
    rec = np.empty((count, label_bytes + 3072), dtype=np.uint8)
    if fine:
        rec[:, 0] = labels // 5  # coarse label
    rec[:, label_bytes - 1] = labels
    rec[:, label_bytes:] = (labels * 2 + 10)[:, None].astype(np.uint8)
    # Red pixels (0, 0) and (0, 1) hold the global index: 16 bits are enough for 60,000 records.
    rec[:, label_bytes] = idx & 0xFF
    rec[:, label_bytes + 1] = idx >> 8
    return rec


def _write_variant(root, spec):
    folder = os.path.join(root, spec.folder)
    os.makedirs(folder)
    start = 0
    for name in spec.train_files + spec.test_files:
        count = spec.records(name)
        _records(start, count, spec.label_bytes, spec is C100).tofile(os.path.join(folder, name))
        start += count
    return folder


def _identity(image):
    return int(image[0, 0, 0]) + 256 * int(image[0, 1, 0])


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    _write_variant(str(root), C10)
    _write_variant(str(root), C100)
    yield str(root)
    shutil.rmtree(root, ignore_errors=True)  # 368 MB: do not leave it to pytest's tmp retention


@pytest.fixture(autouse=True)
def _no_proxy_no_retries(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(cifar.MIRROR_ENV, raising=False)
    monkeypatch.setattr(cifar, "_DOWNLOAD_RETRIES", 0)  # retries sleep 1 + 2 s; tested in test_download


def _rows(dataset):
    return [(r["image"], r["label"]) for r in dataset.create_dict_iterator(num_epochs=1, output_numpy=True)]


# ----------------------------------------------------------------------------------------------------------------------
# reading


def test_cifar10_splits_labels_and_root_forms(cifar_root):
    train = create_dataset("cifar10", cifar_root, "train", shuffle=False, num_samples=12)
    assert train.info.num_classes == 10 and train.info.class_names[:2] == ("airplane", "automobile")
    rows = _rows(train)
    assert [_identity(im) for im, _ in rows] == list(range(12))
    assert [int(label) for _, label in rows] == [i % 10 for i in range(12)]
    assert all(label.dtype == np.int32 and im.shape == (32, 32, 3) and im.dtype == np.uint8 for im, label in rows)
    assert int(rows[3][0][5, 5, 1]) == 3 * 2 + 10
    assert create_dataset("cifar10", cifar_root, "train").get_dataset_size() == 50000
    # val is the test split; root may also be the folder holding the .bin files.
    for split, root in (("val", cifar_root), ("test", os.path.join(cifar_root, C10.folder))):
        dataset = create_dataset("cifar10", root, split, shuffle=False, num_samples=2)
        assert [_identity(im) for im, _ in _rows(dataset)] == [50000, 50001]
    with pytest.raises(DatasetError, match=r"CIFAR-10 has no split 'valid'; use one of \['test', 'train', 'val'\]"):
        create_dataset("cifar10", cifar_root, "valid")
    assert dataset_info("cifar10", split="val").num_classes == 10


def test_cifar100_uses_fine_labels(cifar_root):
    dataset = create_dataset("cifar100", cifar_root, "test", shuffle=False, num_samples=7)
    assert dataset.get_col_names() == ["image", "label"]
    rows = _rows(dataset)
    assert [(_identity(im), int(label)) for im, label in rows] == [(50000 + i, i) for i in range(7)]
    assert rows[0][1].dtype == np.int32
    info = dataset.info
    assert info.num_classes == 100 and len(set(info.class_names)) == 100 and info.class_names[-1] == "worm"
    assert create_dataset("cifar100", cifar_root, "train").get_dataset_size() == 50000


def test_cifar_loader(cifar_root):
    dataset = create_dataset("cifar10", cifar_root, "train", num_samples=16)
    transform = create_transforms("cifar10", 32, is_training=True, auto_augment="randaug-m9-n2")
    loader = create_loader(dataset, 8, is_training=True, transform=transform, cutmix=1.0)
    batches = list(loader.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert [(x.shape, y.shape, y.dtype) for x, y in batches] == [((8, 3, 32, 32), (8, 10), np.float32)] * 2


def test_cifar_shards(cifar_root):
    # Evaluation shards: disjoint and complete; training shards (10000 = 2 x 5000): disjoint too.
    for shuffle, shards in ((False, 3), (True, 2)):
        seen = []
        for shard_id in range(shards):
            dataset = create_dataset(
                "cifar10", cifar_root, "test", shuffle=shuffle, num_shards=shards, shard_id=shard_id
            )
            seen.append([_identity(im) for im, _ in _rows(dataset)])
        assert sorted(i for s in seen for i in s) == list(range(50000, 60000))
        assert max(map(len, seen)) - min(map(len, seen)) <= 1


# ----------------------------------------------------------------------------------------------------------------------
# bad files


def test_missing_truncated_and_corrupt_files(tmp_path, cifar_root):
    with pytest.raises(
        DatasetError, match=r"CIFAR-10 not found in .*: expected .*cifar-10-batches-bin/ with .*download=True"
    ):
        create_dataset("cifar10", str(tmp_path))
    folder = tmp_path / C10.folder
    os.makedirs(folder)
    test_file = folder / "test_batch.bin"
    test_file.write_bytes(b"\0" * 1000)
    with pytest.raises(DatasetError) as err:
        create_dataset("cifar10", str(tmp_path), "test")
    assert str(err.value) == (
        f"truncated CIFAR file {test_file}: expected 30730000 bytes, got 1000; delete the folder and re-download "
        f"(--dataset_download)"
    )
    with pytest.raises(DatasetError, match=r"CIFAR-10 file .*data_batch_1.bin is missing; expected data_batch_1.bin"):
        create_dataset("cifar10", str(tmp_path), "train")
    records = _records(50000, 10000, 1, False)
    records[123, 0] = 10
    records.tofile(test_file)
    with pytest.raises(
        DatasetError, match=r"corrupt CIFAR file .*test_batch.bin: record 123 has label 10, expected 0..9"
    ):
        create_dataset("cifar10", str(tmp_path), "test", download=True)  # present but bad: not downloaded over
    with open(test_file, "ab") as f:
        f.write(b"\0")
    with pytest.raises(DatasetError, match="oversized CIFAR file"):
        create_dataset("cifar10", str(tmp_path), "test")
    # Nothing was deleted or added.
    assert sorted(os.listdir(tmp_path)) == [C10.folder] and os.listdir(folder) == ["test_batch.bin"]


# ----------------------------------------------------------------------------------------------------------------------
# download


def _tar_gz(entries):
    """A .tar.gz in memory from (name, bytes or None for a folder or a TarInfo) entries; fast gzip level 1."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for name, data in entries:
            if isinstance(data, tarfile.TarInfo):
                tar.addfile(data)
                continue
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def good_archive(cifar_root):
    folder = os.path.join(cifar_root, C10.folder)
    entries = [(C10.folder, None)]
    for name in C10.train_files + C10.test_files + ("batches.meta.txt",):
        path = os.path.join(folder, name)
        data = open(path, "rb").read() if os.path.exists(path) else b"\n".join(n.encode() for n in C10.classes)
        entries.append((f"{C10.folder}/{name}", data))
    return _tar_gz(entries)


@pytest.fixture(scope="module")
def server():
    with LocalServer(max_lifetime=300) as srv:
        yield srv


def _expect_md5(monkeypatch, body):
    monkeypatch.setitem(cifar.CIFAR_SPECS, "cifar10", dataclasses.replace(C10, md5=hashlib.md5(body).hexdigest()))


def _listing(root):
    return sorted(os.listdir(root))


def test_download_extracts_atomically_and_reuses(server, good_archive, tmp_path, monkeypatch):
    _expect_md5(monkeypatch, good_archive)
    server.add("/good/cifar-10-binary.tar.gz", good_archive)
    root = tmp_path / "data"
    kwargs = dict(download=True, mirror=server.url("/good/"), ssl_context=client_ssl_context())
    dataset = create_dataset("cifar10", str(root), "test", shuffle=False, num_samples=3, **kwargs)
    assert [_identity(im) for im, _ in _rows(dataset)] == [50000, 50001, 50002]
    # The extracted folder, the verified archive and the lock file; no temporary folder or partial file.
    assert _listing(root) == [".cifar-10-batches-bin.lock", C10.folder, C10.archive]
    assert _listing(root / C10.folder) == sorted(C10.train_files + C10.test_files + ("batches.meta.txt",))
    assert server.hits["/good/cifar-10-binary.tar.gz"] == 1
    assert create_dataset("cifar10", str(root), "train", **kwargs).get_dataset_size() == 50000
    assert server.hits["/good/cifar-10-binary.tar.gz"] == 1  # present: not fetched again
    # A deleted folder is re-extracted from the verified archive without a download.
    shutil.rmtree(root / C10.folder)
    create_dataset("cifar10", str(root), "test", **kwargs)
    assert server.hits["/good/cifar-10-binary.tar.gz"] == 1
    shutil.rmtree(root)


def test_concurrent_downloads_fetch_once(server, good_archive, tmp_path, monkeypatch):
    # Two ranks on one machine (threads here: the lock is per open file, so they exclude each other too).
    _expect_md5(monkeypatch, good_archive)
    server.add("/env/cifar-10-binary.tar.gz", good_archive)
    monkeypatch.setenv(cifar.MIRROR_ENV, server.url("/env"))
    results, errors = [], []

    def rank():
        try:
            dataset = create_dataset("cifar10", str(tmp_path), "test", download=True, ssl_context=client_ssl_context())
            results.append(dataset.get_dataset_size())
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=rank) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and results == [10000, 10000]
    assert server.hits["/env/cifar-10-binary.tar.gz"] == 1
    shutil.rmtree(tmp_path / C10.folder)


@pytest.mark.parametrize(
    "route, words",
    [
        (dict(body=b"not the archive" * 100), ["md5 mismatch", "nothing was saved"]),
        (dict(status=500), ["HTTP 500"]),
        (dict(cut_after=1000), ["connection cut after 1000 of"]),
    ],
    ids=["bad-md5", "server-error", "connection-cut"],
)
def test_failed_downloads_leave_nothing(server, good_archive, tmp_path, monkeypatch, route, words):
    _expect_md5(monkeypatch, good_archive)
    route = dict(route)
    body = route.pop("body", good_archive)
    path = f"/fail-{len(server.routes)}/cifar-10-binary.tar.gz"
    server.add(path, body, **route)
    with pytest.raises(DownloadError) as err:
        create_dataset(
            "cifar10",
            str(tmp_path),
            download=True,
            mirror=server.url(path.rsplit("/", 1)[0]),
            ssl_context=client_ssl_context(),
        )
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    assert _listing(tmp_path) == [".cifar-10-batches-bin.lock"]  # no archive, no temporary file, no folder


def _member(name, kind, target=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    "entries, match",
    [
        ([(f"{C10.folder}/data_batch_1.bin", b"x"), ("../evil.txt", b"x")], "member '../evil.txt' would land outside"),
        ([("/tmp/evil.txt", b"x")], "member '/tmp/evil.txt' would land outside"),
        (
            [(None, _member(f"{C10.folder}/test_batch.bin", tarfile.SYMTYPE, "/etc/passwd"))],
            "is a link or special file",
        ),
        ([(f"{C10.folder}/test_batch.bin", b"x")], r"does not hold cifar-10-batches-bin/data_batch_1.bin"),
    ],
    ids=["dotdot", "absolute", "symlink", "incomplete"],
)
def test_unsafe_or_wrong_archives_are_refused(server, tmp_path, monkeypatch, entries, match):
    body = _tar_gz(entries)
    _expect_md5(monkeypatch, body)
    path = f"/unsafe-{len(server.routes)}"
    server.add(path + "/cifar-10-binary.tar.gz", body)
    root = tmp_path / "root"
    with pytest.raises(DatasetError, match=match):
        create_dataset("cifar10", str(root), download=True, mirror=server.url(path), ssl_context=client_ssl_context())
    # Only the (verified) archive and the lock file: nothing extracted, no temporary folder, nothing outside.
    assert _listing(root) == [".cifar-10-batches-bin.lock", C10.archive]
    assert _listing(tmp_path) == ["root"]
