"""Datasets (image folder, shipped digits), transforms, loaders and mixup, on data the tests generate.

CIFAR and its download live in test_data_cifar.py.
"""

import hashlib
import io
import logging
import os

import numpy as np
import pytest
from PIL import Image

import mindspore.dataset as ds

from mindcv.data import (
    DatasetInfo,
    Mixup,
    constants,
    create_dataset,
    create_loader,
    create_transforms,
    dataset_info,
    list_datasets,
)
from mindcv.data.auto_augment import parse_randaug
from mindcv.data.digits import DIGITS_ASSET, load_digits
from mindcv.errors import ConfigError, DatasetError, UnknownNameError

# ----------------------------------------------------------------------------------------------------------------------
# fixtures


def _photo(rng, w=48, h=36, mode="RGB"):
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(img).convert(mode)


def _save(img, path, fmt=None):
    img.save(path, format=fmt)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """root/{train,val}/<class>/ with JPEG and PNG files in mixed-case extensions, plus files to ignore."""
    root = tmp_path_factory.mktemp("imgfolder")
    rng = np.random.default_rng(0)
    layout = {
        "train": {
            "cat": [
                ("a.jpg", "JPEG", "RGB"),
                ("b.JPG", "JPEG", "L"),
                ("c.Jpeg", "JPEG", "CMYK"),
                ("d.png", "PNG", "RGBA"),
            ],
            "dog": [("e.PNG", "PNG", "P"), ("f.jpeg", "JPEG", "RGB"), ("g.bmp", "BMP", "RGB")],
            "emu": [("h.JPEG", "JPEG", "RGB"), ("i.png", "PNG", "LA")],
        },
        "val": {
            "cat": [("v1.jpg", "JPEG", "RGB")],
            "dog": [("v2.png", "PNG", "RGB")],
            "emu": [("v3.jpg", "JPEG", "RGB")],
        },
    }
    for split, classes in layout.items():
        for cls, files in classes.items():
            os.makedirs(root / split / cls)
            for name, fmt, mode in files:
                _save(_photo(rng, mode=mode), root / split / cls / name, fmt)
    # Not images, or not where images are read: all must be ignored.
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    os.makedirs(root / "train" / "dog" / "nested")
    _save(_photo(rng), root / "train" / "dog" / "nested" / "deep.jpg", "JPEG")
    os.makedirs(root / "train" / ".ipynb_checkpoints")
    _save(_photo(rng), root / "train" / ".ipynb_checkpoints" / "x.jpg", "JPEG")
    return str(root)


@pytest.fixture
def seed():
    """Set MindSpore's dataset seed for one test and restore the previous one."""
    old = ds.config.get_seed()
    yield ds.config.set_seed
    ds.config.set_seed(old)


def _rows(dataset, columns=("image", "label")):
    return [tuple(row[c] for c in columns) for row in dataset.create_dict_iterator(num_epochs=1, output_numpy=True)]


def _digest(array):
    return hashlib.md5(np.ascontiguousarray(array).tobytes()).hexdigest()


# ----------------------------------------------------------------------------------------------------------------------
# registry


def test_list_datasets_and_unknown_name():
    assert list_datasets() == ["cifar10", "cifar100", "digits", "imagenet"]
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'cifar'; choose one of: cifar10, cifar100, "):
        create_dataset("cifar")
    with pytest.raises(UnknownNameError, match="choose one of: cifar10, cifar100, digits, imagenet"):
        create_dataset("mnist")
    with pytest.raises(UnknownNameError, match="create_transforms: unknown dataset 'mnist'"):
        create_transforms("mnist")


def test_every_dataset_has_transforms():
    for name in list_datasets():
        assert create_transforms(name, 32, is_training=True)
        assert create_transforms(name, 32, is_training=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_shards=2), "give both"),
        (dict(shard_id=0), "give both"),
        (dict(num_shards=2, shard_id=2), r"shard_id=2 must be an integer in \[0, 1\]"),
        (dict(num_shards=0, shard_id=0), "num_shards=0 must be a positive integer"),
        (dict(num_samples=0), "num_samples=0"),
        (dict(image_check="deep"), "image_check='deep' is not one of"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        create_dataset("digits", **kwargs)


# ----------------------------------------------------------------------------------------------------------------------
# image folders


def test_folder_reads_every_image_with_sorted_class_labels(folder):
    dataset = create_dataset("imagenet", folder, "train", shuffle=False)
    assert dataset.info == DatasetInfo("imagenet", 3, ("cat", "dog", "emu"), num_skipped=0)
    rows = _rows(dataset)
    # 4 + 3 + 2 images; notes.txt, nested/ and .ipynb_checkpoints/ are not read.
    assert sorted(int(label) for _, label in rows) == [0, 0, 0, 0, 1, 1, 1, 2, 2]
    assert all(label.dtype == np.int32 for _, label in rows)
    # Images come encoded; the evaluation transforms decode every mode (grey, CMYK, RGBA, palette) to RGB.
    loader = create_loader(dataset, 4, transform=create_transforms("imagenet", 32))
    batches = list(loader.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert [b[0].shape for b in batches] == [(4, 3, 32, 32), (4, 3, 32, 32), (1, 3, 32, 32)]
    assert all(b[0].dtype == np.float32 and b[1].dtype == np.int32 for b in batches)
    assert dataset_info("imagenet", folder, "val") == dataset_info("imagenet", folder, "train")


def test_folder_webp_is_transcoded(tmp_path):
    rng = np.random.default_rng(1)
    for cls in ("a", "b"):
        os.makedirs(tmp_path / "train" / cls)
        _save(_photo(rng), tmp_path / "train" / cls / "x.webp", "WEBP")
        _save(_photo(rng), tmp_path / "train" / cls / "y.JPG", "JPEG")
    dataset = create_dataset("imagenet", str(tmp_path), "train", shuffle=False)
    loader = create_loader(dataset, 4, transform=create_transforms("imagenet", 32, is_training=True))
    ((image, label),) = loader.create_tuple_iterator(num_epochs=1, output_numpy=True)
    assert image.shape == (4, 3, 32, 32) and sorted(label.tolist()) == [0, 0, 1, 1]


def test_folder_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset root .*nowhere does not exist .*<root>/<split>/<class>/<image>"):
        create_dataset("imagenet", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="the imagenet dataset needs root="):
        create_dataset("imagenet")
    os.makedirs(tmp_path / "train" / "a")
    with pytest.raises(DatasetError, match=r"split folder .*val does not exist \(it has the folders \['train'\]\)"):
        create_dataset("imagenet", str(tmp_path), "val")
    with pytest.raises(DatasetError, match=r"no images in .*train: its 1 class folders hold no jpg/jpeg/png/bmp/webp"):
        create_dataset("imagenet", str(tmp_path), "train")
    os.makedirs(tmp_path / "flat")
    _save(_photo(np.random.default_rng(0)), tmp_path / "flat" / "x.jpg", "JPEG")
    with pytest.raises(DatasetError, match=r"no class folders in .*flat; its 1 images lie directly in it"):
        create_dataset("imagenet", str(tmp_path), "flat")
    with pytest.raises(DatasetError, match="needs root="):
        dataset_info("imagenet")


def _with_bad_files(tmp_path):
    rng = np.random.default_rng(2)
    for cls in ("a", "b"):
        os.makedirs(tmp_path / "train" / cls)
        for i in range(3):
            _save(_photo(rng, 64, 48), tmp_path / "train" / cls / f"ok{i}.jpg", "JPEG")
    good = (tmp_path / "train" / "a" / "ok0.jpg").read_bytes()
    (tmp_path / "train" / "a" / "empty.jpg").write_bytes(b"")
    (tmp_path / "train" / "b" / "text.png").write_text("this is not a png")
    buf = io.BytesIO()
    _photo(rng).save(buf, format="GIF")
    (tmp_path / "train" / "b" / "anim.jpg").write_bytes(buf.getvalue())
    return good


def test_corrupt_images_are_named_or_skipped(tmp_path, caplog):
    before = set(os.listdir(tmp_path))
    _with_bad_files(tmp_path)
    with pytest.raises(DatasetError) as err:
        create_dataset("imagenet", str(tmp_path), "train")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"corrupt or unreadable image {tmp_path / 'train' / 'a' / 'empty.jpg'}")
    assert "(3 bad files in" in msg and "skip_bad_images=True" in msg
    with caplog.at_level(logging.WARNING, logger="mindcv.data.folder"):
        dataset = create_dataset("imagenet", str(tmp_path), "train", skip_bad_images=True, shuffle=False)
    assert dataset.info.num_skipped == 3
    assert "skipped 3 unreadable images of 9" in caplog.text
    loader = create_loader(dataset, 8, transform=create_transforms("imagenet", 32, is_training=True))
    ((image, label),) = loader.create_tuple_iterator(num_epochs=1, output_numpy=True)
    assert image.shape == (6, 3, 32, 32) and sorted(label.tolist()) == [0, 0, 0, 1, 1, 1]
    # Nothing was written next to the data or into the working directory.
    assert set(os.listdir(tmp_path)) == before | {"train"}
    assert not [f for f in os.listdir(".") if f.startswith(("abnormal_image", "unsupported_image"))]


def test_truncated_jpeg_needs_the_full_check(tmp_path):
    good = _with_bad_files(tmp_path)
    for name in ("empty.jpg",):
        os.remove(tmp_path / "train" / "a" / name)
    os.remove(tmp_path / "train" / "b" / "text.png")
    os.remove(tmp_path / "train" / "b" / "anim.jpg")
    (tmp_path / "train" / "a" / "cut.jpg").write_bytes(good[: len(good) // 2])
    # The header check cannot see a cut JPEG body; the full decode can.
    assert create_dataset("imagenet", str(tmp_path), "train").info.num_skipped == 0
    with pytest.raises(DatasetError, match=r"corrupt or unreadable image .*cut\.jpg: OSError: image file is truncated"):
        create_dataset("imagenet", str(tmp_path), "train", image_check="full")
    dataset = create_dataset("imagenet", str(tmp_path), "train", image_check="full", skip_bad_images=True)
    assert dataset.info.num_skipped == 1


# ----------------------------------------------------------------------------------------------------------------------
# digits


def test_digits_asset_and_split():
    with np.load(DIGITS_ASSET) as z:
        images, labels = z["images"], z["labels"]
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and images.max() == 16
    # Per-class counts of the UCI test set (optdigits.tes), which scikit-learn ships as load_digits.
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    train_x, train_y = load_digits("train")
    val_x, val_y = load_digits("val")
    assert train_x.shape == (1442, 32, 32, 3) and val_x.shape == (355, 32, 32, 3) and train_x.dtype == np.uint8
    assert train_y.dtype == np.int32
    # Stratified: every class has 20 % (rounded down) of its images in val.
    assert np.bincount(val_y).tolist() == [c // 5 for c in np.bincount(labels)]
    # Disjoint and complete: the served images are the 8x8 ones upscaled 4x with values * 255 / 16.
    served = np.concatenate([train_x, val_x])[:, ::4, ::4, 0]
    assert sorted(map(_digest, served)) == sorted(_digest(np.round(im * 255.0 / 16).astype(np.uint8)) for im in images)
    assert (train_x[..., 0] == train_x[..., 2]).all()
    # The normalisation constants are the statistics of the train split as served.
    pixels = train_x.astype(np.float64) / 255
    assert constants.DIGITS_MEAN[0] == pytest.approx(pixels.mean(), abs=5e-5)
    assert constants.DIGITS_STD[0] == pytest.approx(pixels.std(), abs=5e-5)
    with pytest.raises(DatasetError, match=r"digits has no split 'test'; use one of \['train', 'val'\]"):
        create_dataset("digits", split="test")


def test_digits_labels_match_images():
    # A nearest-centroid classifier fitted on train must do far better than chance (10 %) on val, which
    # holds only if images and labels stayed paired through loading, splitting and upscaling.
    train_x, train_y = load_digits("train")
    val_x, val_y = load_digits("val")
    flat = lambda x: x[..., 0].reshape(len(x), -1).astype(np.float32)  # noqa: E731
    centroids = np.stack([flat(train_x)[train_y == k].mean(axis=0) for k in range(10)])
    pred = np.argmin(((flat(val_x)[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == val_y).mean() > 0.85


def test_digits_dataset_and_info():
    dataset = create_dataset("digits", split="val", shuffle=False)
    assert dataset.get_dataset_size() == 355 and dataset.info.num_classes == 10
    image, label = _rows(dataset)[0]
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and label.dtype == np.int32
    info = dataset_info("digits", split="val")
    assert info.num_classes == 10 and info.class_names == tuple("0123456789")


@pytest.mark.parametrize("name, root_kind", [("digits", None), ("imagenet", "folder")])
@pytest.mark.parametrize("shuffle", [False, True])
def test_shards_are_disjoint_and_complete(name, root_kind, shuffle, folder, seed):
    seed(7)
    root = folder if root_kind else None
    everything = sorted(_digest(img) for img, _ in _rows(create_dataset(name, root, "train", shuffle=False)))
    shards = []
    for shard_id in range(3):
        dataset = create_dataset(name, root, "train", shuffle=shuffle, num_shards=3, shard_id=shard_id)
        shards.append([_digest(img) for img, _ in _rows(dataset)])
    flat = [d for shard in shards for d in shard]
    if shuffle:
        # Training shards: equal sizes, complete, topped up by wrapping around (1442 = 3 * 481 - 1).
        assert len({len(s) for s in shards}) == 1 and set(flat) == set(everything)
        assert len(flat) - len(everything) == (-len(everything)) % 3
    else:
        assert sorted(flat) == everything  # evaluation shards: complete, and no sample twice
        assert max(map(len, shards)) - min(map(len, shards)) <= 1


# ----------------------------------------------------------------------------------------------------------------------
# transforms


def _one(ops, image):
    data = ds.NumpySlicesDataset((image[None],), column_names=["image"], shuffle=False).map(ops, input_columns="image")
    return next(data.create_tuple_iterator(num_epochs=1, output_numpy=True))[0]


def _jpeg(rng, w=80, h=60):
    buf = io.BytesIO()
    _photo(rng, w, h).save(buf, format="PNG")  # lossless, so flips compare exactly
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


OPTIONS = [
    {},
    dict(scale=(0.5, 1.0), ratio=(0.5, 2.0)),
    dict(hflip=1.0, vflip=1.0),
    dict(color_jitter=0.4),
    dict(color_jitter=(0.4, 0.3, 0.2, 0.1)),
    dict(auto_augment="randaug-m9-n2-mstd0.5"),
    dict(auto_augment="randaug-m7-n1-mmax10-inc1"),
    dict(auto_augment="autoaug"),
    dict(auto_augment="autoaug-cifar10"),
    dict(auto_augment="trivialaugwide"),
    dict(re_prob=1.0, re_scale=(0.1, 0.2), re_ratio=(0.5, 2.0), re_value="random", re_max_attempts=5),
    dict(re_prob=0.5, re_value=(1, 2, 3)),
    dict(interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)),
    dict(interpolation="nearest"),
    dict(interpolation="area", crop_pct=0.9),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
@pytest.mark.parametrize("name", ["imagenet", "digits"])
@pytest.mark.parametrize("is_training", [True, False])
def test_every_transform_option_gives_chw_float(name, is_training, options):
    rng = np.random.default_rng(3)
    image = _jpeg(rng) if name == "imagenet" else rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for size, expected in ((40, (3, 40, 40)), ((24, 36), (3, 24, 36))):
        out = _one(create_transforms(name, size, is_training=is_training, **options), image)
        assert out.shape == expected and out.dtype == np.float32 and np.isfinite(out).all()


def test_eval_resize_and_center_crop_follow_crop_pct():
    # A 64x64 image with a 1-px white frame: with crop_pct=1 the frame survives the resize to 32, with
    # crop_pct=0.5 the centre crop of the 64 px resize drops it.
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    img[0, :], img[-1, :], img[:, 0], img[:, -1] = 255, 255, 255, 255
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    data = np.frombuffer(buf.getvalue(), dtype=np.uint8)
    norm = dict(mean=(0, 0, 0), std=(1 / 255, 1 / 255, 1 / 255), interpolation="nearest")
    full = _one(create_transforms("imagenet", 32, crop_pct=1.0, **norm), data)
    half = _one(create_transforms("imagenet", 32, crop_pct=0.5, **norm), data)
    assert full[:, 0, :].min() == 255 and half.max() == 0


def test_flips_and_normalisation_are_exact():
    rng = np.random.default_rng(4)
    data = _jpeg(rng, 64, 48)
    whole = dict(scale=(1.0, 1.0), ratio=(64 / 48, 64 / 48), interpolation="nearest")  # the full image, unscaled
    plain = _one(create_transforms("imagenet", (48, 64), is_training=True, hflip=0.0, **whole), data)
    flipped = _one(create_transforms("imagenet", (48, 64), is_training=True, hflip=1.0, **whole), data)
    both = _one(create_transforms("imagenet", (48, 64), is_training=True, hflip=1.0, vflip=1.0, **whole), data)
    np.testing.assert_array_equal(flipped, plain[:, :, ::-1])
    np.testing.assert_array_equal(both, plain[:, ::-1, ::-1])
    decoded = np.asarray(Image.open(io.BytesIO(data.tobytes())).convert("RGB"), dtype=np.float32)
    mean, std = np.array(constants.IMAGENET_DEFAULT_MEAN), np.array(constants.IMAGENET_DEFAULT_STD)
    expected = ((decoded - mean * 255) / (std * 255)).transpose(2, 0, 1)
    np.testing.assert_allclose(plain, expected, rtol=1e-5, atol=1e-4)


def test_small_dataset_defaults():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    # Evaluation at the native size only normalises, with the dataset's own statistics.
    out = _one(create_transforms("cifar10", 32), image)
    mean, std = np.array(constants.CIFAR10_MEAN), np.array(constants.CIFAR10_STD)
    np.testing.assert_allclose(out, ((image - mean * 255) / (std * 255)).transpose(2, 0, 1), rtol=1e-5, atol=1e-4)
    # Digits are never mirrored unless asked; CIFAR is.
    names = lambda ops: [type(op).__name__ for op in ops]  # noqa: E731
    assert "RandomHorizontalFlip" not in names(create_transforms("digits", 32, is_training=True))
    assert names(create_transforms("cifar100", 32, is_training=True))[:2] == ["RandomCrop", "RandomHorizontalFlip"]
    assert "Resize" in names(create_transforms("cifar10", 224, is_training=True))
    # colour jitter is ignored with auto_augment (as in timm)
    ops = names(create_transforms("cifar10", 32, is_training=True, auto_augment="autoaug", color_jitter=0.4))
    assert "AutoAugment" in ops and "RandomColorAdjust" not in ops


def test_random_erasing_erases_a_box():
    image = np.full((32, 32, 3), 200, dtype=np.uint8)
    ops = create_transforms(
        "digits", 32, is_training=True, re_prob=1.0, re_value=0, re_scale=(0.1, 0.1), re_ratio=(1, 1)
    )
    out = _one(ops, image)
    erased = (out == 0).all(axis=0)
    assert 0.05 < erased.mean() < 0.15  # a tenth of the image, erased in all channels
    rows, cols = np.nonzero(erased)
    assert erased[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # one rectangle


def test_augmentation_randomness_follows_the_seed(seed):
    rng = np.random.default_rng(6)
    data = _jpeg(rng)
    ops = dict(auto_augment="randaug-m9-n2-mstd0.5", re_prob=0.5, color_jitter=0.4)

    def run(s):
        seed(s)
        dataset = ds.NumpySlicesDataset((np.stack([data] * 6),), column_names=["image"], shuffle=False)
        # One worker: with several, MindSpore hands rows to per-thread generators in a racy order.
        ops_ = create_transforms("imagenet", 32, is_training=True, **ops)
        dataset = dataset.map(ops_, input_columns="image", num_parallel_workers=1)
        return np.stack([r[0] for r in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)])

    first, again, other = run(1), run(1), run(2)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first[0], first[1])  # each image draws its own augmentation


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(interpolation="lanczos"), r"interpolation='lanczos' is not one of \['nearest', 'bilinear'"),
        (dict(mean=(124, 116, 104)), "looks like 0-255 units"),
        (dict(std=(0.2, 0.2)), "std=.* must hold 3 numbers"),
        (dict(hflip=1.5), r"hflip=1.5 must be a probability in \[0, 1\]"),
        (dict(re_prob=-0.1), "re_prob=-0.1 must be a probability"),
        (dict(re_prob=0.5, re_value=0.5), "re_value=0.5 must be an integer"),
        (dict(re_prob=0.5, re_scale=(0.5, 0.1)), "re_scale=.* must satisfy 0 < min <= max"),
        (dict(scale=(0.08, 1.5)), r"scale=.* must satisfy 0 < min <= max <= 1"),
        (dict(color_jitter=(0.1, 0.2)), "color_jitter=.* must be a number or"),
        (dict(color_jitter=(0.1, 0.1, 0.1, 0.7)), "hue <= 0.5"),
        (dict(auto_augment="randaugment"), "auto_augment='randaugment': unknown policy 'randaugment'"),
        (dict(auto_augment="randaug-m11"), r"magnitude m11 must lie in 0..mmax \(10\)"),
        (dict(auto_augment="randaug-m9-x3"), "unknown option 'x'"),
        (dict(auto_augment="randaug-m9-inc0"), "only inc1 exists"),
        (dict(auto_augment="randaug-mstd"), "option 'mstd' has no value"),
        (dict(auto_augment="randaug-m9-n0"), "n must be at least 1"),
        (dict(auto_augment="autoaug-coco"), "unknown AutoAugment policy 'coco'"),
        (dict(auto_augment="trivialaugwide-m3"), "trivialaugwide takes no options"),
        (dict(image_resize=0), "image_resize=0 must be positive"),
        (dict(image_resize=(32, 32, 3)), "image_resize=.* must be a positive integer or an"),
    ],
)
def test_bad_transform_options(options, match):
    options = dict(options)
    size = options.pop("image_resize", 32)
    with pytest.raises(ConfigError, match=match):
        create_transforms("imagenet", size, is_training=True, **options)


def test_bad_crop_pct():
    with pytest.raises(ConfigError, match=r"crop_pct=1.5 must lie in \(0, 1\]"):
        create_transforms("imagenet", 32, crop_pct=1.5)


def test_parse_randaug():
    assert parse_randaug("randaug") == (9, 2, 0.0, 10)
    assert parse_randaug("randaug-m5-n3-mstd0.5-mmax20-inc1") == (5, 3, 0.5, 20)


# ----------------------------------------------------------------------------------------------------------------------
# loader and mixup


def test_loader_labels_and_attributes():
    dataset = create_dataset("digits", split="val", shuffle=False)
    loader = create_loader(dataset, 64, drop_remainder=True, transform=create_transforms("digits", 32))
    batches = list(loader.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert len(batches) == 355 // 64
    image, label = batches[0]
    assert image.shape == (64, 3, 32, 32) and image.dtype == np.float32
    assert label.shape == (64,) and label.dtype == np.int32
    assert loader.info == dataset.info and loader.info.class_names[3] == "3"
    with pytest.raises(ConfigError, match="this dataset already feeds another loader; call create_dataset again"):
        create_loader(dataset, 64)
    # transform=None: the dataset's default transforms (ImageNet-size output unless told otherwise)
    loader = create_loader(create_dataset("digits", split="val"), 2)
    image, _ = next(loader.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert image.shape == (2, 3, 224, 224)


@pytest.mark.parametrize(
    "mix", [dict(mixup=0.2), dict(cutmix=1.0), dict(mixup=0.2, cutmix=1.0, cutmix_prob=0.5, mixup_switch_prob=0.3)]
)
def test_mixup_cutmix_give_soft_one_hot_labels(mix):
    dataset = create_dataset("digits", split="val")
    loader = create_loader(
        dataset, 16, drop_remainder=True, is_training=True, transform=create_transforms("digits", 32, True), **mix
    )
    mixed = 0
    for image, label in loader.create_tuple_iterator(num_epochs=1, output_numpy=True):
        assert image.shape == (16, 3, 32, 32) and image.dtype == np.float32
        assert label.shape == (16, 10) and label.dtype == np.float32
        np.testing.assert_allclose(label.sum(axis=1), 1.0, rtol=1e-6)
        assert ((label > 0).sum(axis=1) <= 2).all()
        mixed += int(((label > 0) & (label < 1)).any())
    assert mixed > 0


def test_mixup_turns_off_at_the_given_epoch():
    dataset = create_dataset("digits", split="val")
    transform = create_transforms("digits", 32, True)
    loader = create_loader(dataset, 32, is_training=True, transform=transform, mixup=1.0, mixup_off_epoch=2)
    iterator = loader.create_tuple_iterator(num_epochs=3, output_numpy=True)
    soft = []
    for _ in range(3):
        labels = [label for _, label in iterator]  # the whole epoch
        assert all(label.shape == (32 if i < 11 else 3, 10) for i, label in enumerate(labels))
        soft.append(any(((label > 0) & (label < 1)).any() for label in labels))
    assert soft == [True, True, False]
    # A resumed run starting at epoch 2 is already past the switch-off.
    loader = create_loader(
        create_dataset("digits", split="val"),
        32,
        is_training=True,
        transform=transform,
        mixup=1.0,
        mixup_off_epoch=2,
        start_epoch=2,
    )
    labels = [label for _, label in loader.create_tuple_iterator(num_epochs=1, output_numpy=True)]
    assert all(np.isin(label, (0.0, 1.0)).all() and label.shape[1] == 10 for label in labels)


def test_eval_loader_never_mixes():
    dataset = create_dataset("digits", split="val")
    loader = create_loader(dataset, 8, is_training=False, transform=create_transforms("digits", 32), mixup=1.0)
    _, label = next(loader.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert label.shape == (8,) and label.dtype == np.int32


def test_loader_checks_num_classes_and_columns():
    dataset = create_dataset("digits", split="val")
    with pytest.raises(DatasetError, match=r"digits has 10 classes \(labels 0..9\) but num_classes=5; set num_classes"):
        create_loader(dataset, 8, num_classes=5)
    transform = create_transforms("digits", 32)
    loader = create_loader(dataset, 8, num_classes=12, transform=transform, is_training=True, mixup=0.5)
    assert next(loader.create_tuple_iterator(num_epochs=1, output_numpy=True))[1].shape == (8, 12)
    plain = ds.NumpySlicesDataset((np.zeros((4, 2), np.float32),), column_names=["x"])
    with pytest.raises(ConfigError, match="needs the columns 'image' and 'label'"):
        create_loader(plain, 2, transform=[])
    plain = ds.NumpySlicesDataset(
        (np.zeros((4, 2), np.float32), np.zeros(4, np.int32)), column_names=["image", "label"]
    )
    with pytest.raises(ConfigError, match="pass transform=create_transforms"):
        create_loader(plain, 2)
    with pytest.raises(ConfigError, match="mixup/cutmix need num_classes"):
        create_loader(plain, 2, transform=[], is_training=True, mixup=0.2)
    with pytest.raises(ConfigError, match="batch_size=0 must be a positive integer"):
        create_loader(dataset, 0)
    with pytest.raises(ConfigError, match=r"cutmix=-1 must be a number >= 0 \(0 disables it\)"):
        create_loader(dataset, 8, cutmix=-1)


class _Info:
    def __init__(self, epoch, batch):
        self.epoch, self.batch = epoch, batch

    def get_epoch_num(self):
        return self.epoch

    def get_batch_num(self):
        return self.batch


def test_mixup_math():
    rng = np.random.default_rng(8)
    images = rng.normal(size=(6, 3, 16, 16)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 4, 5])
    mixup = Mixup(mixup_alpha=1.0, num_classes=6, seed=3)
    out, target = mixup([*images], [*labels], _Info(0, 0))
    lam = target[0, 0]
    np.testing.assert_allclose(out, lam * images + (1 - lam) * images[::-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(target, lam * np.eye(6) + (1 - lam) * np.eye(6)[::-1], rtol=1e-6)
    # Same (seed, epoch, batch): same draw; another batch index: another draw.
    np.testing.assert_array_equal(mixup([*images], [*labels], _Info(0, 0))[0], out)
    assert not np.array_equal(mixup([*images], [*labels], _Info(0, 1))[0], out)

    cutmix = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=6, seed=3)
    for batch in range(5):
        out, target = cutmix([*images], [*labels], _Info(0, batch))
        from_partner = (out != images).any(axis=1)[0]  # the pasted box
        kept = 1.0 - from_partner.mean()
        np.testing.assert_allclose(target[0, 0], kept, rtol=1e-6)  # lam is the area actually kept
        np.testing.assert_allclose(target[0, 5], 1 - kept, rtol=1e-6)

    never = Mixup(mixup_alpha=1.0, prob=0.0, num_classes=6)
    out, target = never([*images], [*labels], _Info(0, 0))
    np.testing.assert_array_equal(out, images)
    np.testing.assert_array_equal(target, np.eye(6, dtype=np.float32))
    with pytest.raises(DatasetError, match="label 6 is out of range for num_classes=6"):
        never([*images], [*(labels + 1)], _Info(0, 0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(mixup_alpha=0.0, cutmix_alpha=0.0), "needs mixup > 0 or cutmix > 0"),
        (dict(mixup_alpha=-1.0), "mixup=-1.0 must be a number >= 0"),
        (dict(prob=2.0), r"cutmix_prob=2.0 must be a number in \[0, 1\]"),
        (dict(num_classes=0), "num_classes=0 must be an integer >= 1"),
        (dict(off_epoch=-1), "mixup_off_epoch=-1 must be an integer >= 0"),
    ],
)
def test_mixup_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Mixup(**kwargs)
