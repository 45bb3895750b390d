"""The parts of ``mindcv.data`` that upstream MindCV's data tests use: augmentation splits (``separate``), the
``autoaugr``/``3a``/``augmix`` policies, repeated augmentation, mixup of one-hot labels, the unnamed (custom
folder) dataset, ``get_dataset_download_root`` and ``get_dataset_size``. Offline, on tiny generated images.
"""

import multiprocessing
import os

import numpy as np
import pytest
from PIL import Image

import mindspore.dataset as ds
from mindspore.dataset import transforms, vision
from mindspore.dataset.transforms import OneHot
from mindspore.dataset.vision import Inter

from mindcv.data import (
    AugMix,
    Mixup,
    RepeatAugSampler,
    create_dataset,
    create_loader,
    create_transforms,
    get_dataset_download_root,
    get_dataset_size,
)
from mindcv.data.augment_ops import LEVEL_MAX, NOISE_QUANTILES, OpParams, noisy_levels, op_variants
from mindcv.data.auto_augment import auto_augment_ops
from mindcv.data.cifar import prepare_cifar
from mindcv.errors import ConfigError, DatasetError

SIDE = 24  # square images, so a full-area crop is deterministic
PER_CLASS = {"train": 6, "val": 4}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """root/{train,val}/{cat,dog}/*.png, square and lossless; every image distinct."""
    root = tmp_path_factory.mktemp("compat")
    rng = np.random.default_rng(0)
    for split, n in PER_CLASS.items():
        for cls in ("cat", "dog"):
            os.makedirs(root / split / cls)
            for i in range(n):
                pixels = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / cls / f"{i}.png")
    return str(root)


@pytest.fixture
def seed():
    old = ds.config.get_seed()
    ds.config.set_seed(5)
    yield
    ds.config.set_seed(old)


def _batches(loader):
    return list(loader.create_tuple_iterator(num_epochs=1, output_numpy=True))


def _image(rng, h=32, w=40):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _augment(ops, image, n):
    """``n`` draws of ``ops`` on one image, in a pipeline: called eagerly, MindSpore's random ops repeat one draw
    whenever a dataset seed is set."""
    data = ds.NumpySlicesDataset((image[None].repeat(n, 0),), column_names=["image"], shuffle=False)
    return [row[0] for row in data.map(ops, input_columns="image").create_tuple_iterator(output_numpy=True)]


# ----------------------------------------------------------------------------------------------------------------------
# separate: augmentation splits

# Full-area square crops and no flips: the primary part is deterministic, so the clean split can be compared.
DETERMINISTIC = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=0.0)


def test_separate_splits_the_training_list_and_is_ignored_in_evaluation():
    kwargs = dict(image_resize=16, is_training=True, auto_augment="3a", re_prob=0.5)
    primary, secondary, final = create_transforms("imagenet", separate=True, **kwargs)
    whole = create_transforms("imagenet", **kwargs)
    assert [type(op) for op in primary + secondary + final] == [type(op) for op in whole]
    assert [type(op) for op in primary] == [vision.RandomCropDecodeResize, vision.RandomHorizontalFlip]
    assert len(secondary) == 1
    assert [type(op) for op in final] == [vision.Normalize, vision.HWC2CHW, vision.RandomErasing]
    # colour jitter is the augmenting part when there is no auto_augment; the small datasets split as well
    assert [type(op) for op in create_transforms("cifar10", 32, True, color_jitter=0.4, separate=True)[1]] == [
        vision.RandomColorAdjust
    ]
    evaluation = create_transforms("imagenet", 16, is_training=False, separate=True)
    assert isinstance(evaluation, list) and [type(op) for op in evaluation] == [
        type(op) for op in create_transforms("imagenet", 16, is_training=False)
    ]


@pytest.mark.parametrize("auto_augment", ["augmix", "3a"])
def test_separate_loader_gives_clean_then_two_augmented_copies(folder, seed, auto_augment):
    batch = 4
    split = create_transforms("", 16, True, auto_augment=auto_augment, separate=True, **DETERMINISTIC)
    loader = create_loader(
        create_dataset(root=folder, shuffle=False), batch, True, True, transform=split, separate=True
    )
    assert loader.output_shapes() == [[3 * batch, 3, 16, 16], [3 * batch]]
    primary, _, final = create_transforms("", 16, True, auto_augment=auto_augment, separate=True, **DETERMINISTIC)
    plain = create_loader(create_dataset(root=folder, shuffle=False), batch, True, transform=primary + final)
    changed = 0
    for (images, labels), (clean, clean_labels) in zip(_batches(loader), _batches(plain)):
        assert images.dtype == np.float32 and labels.dtype == np.int32
        np.testing.assert_array_equal(images[:batch], clean)  # the first third is the un-augmented pipeline
        np.testing.assert_array_equal(labels, np.concatenate([clean_labels] * 3))
        changed += int(not np.array_equal(images[batch : 2 * batch], clean))
        changed += int(not np.array_equal(images[2 * batch :], clean))
    assert changed > 0


def test_separate_with_mixup_keeps_one_soft_label_per_image(folder):
    split = create_transforms("", 16, True, auto_augment="3a", separate=True)
    dataset = create_dataset(root=folder)
    loader = create_loader(
        dataset, 4, True, True, mixup=1.0, transform=split, separate=True, target_transform=[OneHot(2)]
    )
    for images, labels in _batches(loader):
        assert images.shape == (12, 3, 16, 16) and labels.shape == (12, 2) and labels.dtype == np.float32
        np.testing.assert_allclose(labels[:4], labels[4:8])
        np.testing.assert_allclose(labels[:4], labels[8:])


def test_separate_defaults_and_mismatches(folder):
    # transform=None builds the split itself; evaluation ignores separate
    loader = create_loader(create_dataset(root=folder), 2, True, True, separate=True)
    assert loader.output_shapes()[0] == [6, 3, 224, 224]
    loader = create_loader(create_dataset(root=folder, split="val"), 2, True, False, separate=True)
    assert loader.output_shapes()[0] == [2, 3, 224, 224]
    with pytest.raises(ConfigError, match="separate=True needs transform=create_transforms"):
        create_loader(create_dataset(root=folder), 2, is_training=True, separate=True, transform=create_transforms())
    split = create_transforms(is_training=True, separate=True)
    with pytest.raises(ConfigError, match="transform is a .primary, secondary, final. split; pass separate=True"):
        create_loader(create_dataset(root=folder), 2, is_training=True, transform=split)
    with pytest.raises(ConfigError, match="separate='yes' must be True or False"):
        create_loader(create_dataset(root=folder), 2, separate="yes")


# ----------------------------------------------------------------------------------------------------------------------
# auto_augment: autoaugr, 3a, augmix and magnitude noise


@pytest.mark.parametrize(
    "spec", ["autoaugr", "autoaugr-mstd0.5", "3a", "3a-mstd1", "augmix", "augmix-m5-w4-d2-a0.5", "autoaug-mstd0.5"]
)
def test_new_policies_give_valid_images(spec, seed):
    rng = np.random.default_rng(1)
    image = _image(rng)
    outs = _augment(auto_augment_ops(spec, Inter.BILINEAR, (124, 116, 104)), image, 24)
    assert all(o.shape == image.shape and o.dtype == np.uint8 for o in outs)
    # AutoAugment's steps run with probabilities below 1, so some images pass unchanged
    assert sum(not np.array_equal(o, image) for o in outs) >= 6
    assert len({o.tobytes() for o in outs}) >= 4  # the draws differ
    # and through the whole training pipeline: CHW float32 of the asked size
    (out,) = _augment(create_transforms("cifar10", (20, 28), is_training=True, auto_augment=spec), image, 1)
    assert out.shape == (3, 20, 28) and out.dtype == np.float32 and np.isfinite(out).all()


def test_3a_applies_exactly_one_of_solarize_greyscale_blur(seed):
    image = _image(np.random.default_rng(2))
    solarized = np.where(image >= 128, 255 - image, image)
    contrast = np.abs(np.diff(image.astype(np.int32), axis=1)).mean()
    seen = set()
    for out in _augment(auto_augment_ops("3a", Inter.BILINEAR, (0, 0, 0)), image, 60):
        out = out.astype(np.int32)
        if np.array_equal(out, solarized):
            seen.add("solarize")
        elif (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all():
            seen.add("grey")
        else:  # a blur: same mean, no more local contrast (sigmas near 0.1 leave the image as it is)
            assert abs(out.mean() - image.mean()) < 3
            blurred = np.abs(np.diff(out, axis=1)).mean()
            assert blurred <= contrast
            seen.add("blur" if blurred < 0.8 * contrast else "faint blur")
    assert {"solarize", "grey", "blur"} <= seen


def test_level_rules():
    image = _image(np.random.default_rng(3))
    p = OpParams()
    (post_r,) = op_variants("PosterizeIncreasing", LEVEL_MAX, p)
    (post_o,) = op_variants("PosterizeOriginal", LEVEL_MAX, p)
    assert not post_r(image).any()  # research posterize keeps 0 bits at the top level: stronger
    np.testing.assert_array_equal(post_o(image), image)  # the paper's keeps 8 bits: no change
    (sol,) = op_variants("Solarize", LEVEL_MAX, p)  # threshold 256: nothing to invert
    np.testing.assert_array_equal(sol(image), image)
    (sol_r,) = op_variants("SolarizeIncreasing", LEVEL_MAX, p)  # threshold 0: everything inverted
    np.testing.assert_array_equal(sol_r(image), 255 - image)
    (grey,) = op_variants("Desaturate", LEVEL_MAX, p)
    out = grey(image)
    assert (out[..., 0] == out[..., 2]).all()
    assert len(op_variants("Rotate", 5, p)) == 2  # both signs, equally likely


def test_noisy_levels():
    assert noisy_levels(5, 0) == [5]
    normal = noisy_levels(5, 0.5)
    assert len(normal) == NOISE_QUANTILES and abs(np.mean(normal) - 5) < 1e-6 and 4 < min(normal) < max(normal) < 6
    assert max(noisy_levels(10, 1.0)) == 10.0 and min(noisy_levels(0, 1.0)) == 0.0  # clipped to [0, 10]
    uniform = noisy_levels(3, float("inf"))
    assert 0 < min(uniform) < 0.2 and 2.8 < max(uniform) < 3 and abs(np.mean(uniform) - 1.5) < 1e-6


def test_autoaug_without_noise_stays_the_fused_op():
    assert type(auto_augment_ops("autoaug", Inter.BILINEAR, (0, 0, 0))[0]) is vision.AutoAugment
    assert type(auto_augment_ops("autoaug-mstd0", Inter.BILINEAR, (0, 0, 0))[0]) is vision.AutoAugment
    assert type(auto_augment_ops("autoaug-mstd0.5", Inter.BILINEAR, (0, 0, 0))[0]) is transforms.RandomChoice


def test_augmix_follows_its_seed_and_blends():
    image = _image(np.random.default_rng(4))
    a, b = AugMix(seed=3), AugMix(seed=3)
    outs_a, outs_b = [a(image) for _ in range(5)], [b(image) for _ in range(5)]
    for x, y in zip(outs_a, outs_b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(outs_a[0], outs_a[1])
    # a child process draws its own sequence instead of repeating the parent's
    child = AugMix(seed=3)
    child._pid = -1
    assert not all(np.array_equal(child(image), x) for x in outs_a[:2])


@pytest.mark.parametrize(
    "spec, match",
    [
        ("autoaug-mstd", "option 'mstd' has no value"),
        ("autoaug-cifar10-mstd0.5", "magnitude noise .mstd. exists for the ImageNet policy only"),
        ("autoaug-cifar10-svhn", "name one AutoAugment policy"),
        ("autoaugr-m3", "unknown option 'm'"),
        ("3a-mstd-1", "option 'mstd' has no value"),
        ("augmix-m11", r"the severity m11 must lie in 0..10"),
        ("augmix-w0", "w .the number of chains. must be at least 1"),
        ("augmix-a0", "a must be > 0"),
        ("augmix-x1", "unknown option 'x'"),
    ],
)
def test_bad_policy_strings(spec, match):
    with pytest.raises(ConfigError, match=match):
        create_transforms("imagenet", 32, is_training=True, auto_augment=spec)


# ----------------------------------------------------------------------------------------------------------------------
# repeated augmentation


@pytest.mark.parametrize("num_shards", [1, 2, 3])
def test_repeat_aug_sampler_counts(num_shards):
    n, repeats = 10, 3
    samplers = [RepeatAugSampler(n, repeats, num_shards, rank, shuffle=True, seed=7) for rank in range(num_shards)]
    per_rank = -(-n // num_shards)
    for epoch in range(2):
        shards = [s.indices(epoch) for s in samplers]
        assert all(len(s) == per_rank for s in shards)  # equal steps on every rank
        # dealt out in turn: interleaving the ranks gives back runs of `repeats` copies of distinct images
        dealt = np.empty(per_rank * num_shards, dtype=np.int64)
        for rank, shard in enumerate(shards):
            dealt[rank::num_shards] = shard
        firsts = dealt[::repeats]
        assert len(set(firsts.tolist())) == len(firsts)
        np.testing.assert_array_equal(dealt, np.repeat(firsts, repeats)[: len(dealt)])
        if num_shards == repeats:  # then each rank gets one copy of every drawn image
            assert all(set(s.tolist()) == set(firsts.tolist()) for s in shards)
    assert not np.array_equal(samplers[0].indices(0), samplers[0].indices(1))  # a new order every epoch
    np.testing.assert_array_equal(
        samplers[0].indices(0), RepeatAugSampler(n, repeats, num_shards, 0, seed=7).indices(0)
    )


def test_repeat_aug_sampler_in_order_without_shuffle():
    np.testing.assert_array_equal(RepeatAugSampler(5, 3, shuffle=False).indices(0), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(RepeatAugSampler(5, 2, 2, 1, shuffle=False).indices(0), [0, 1, 2])


def test_repeated_augmentation_puts_copies_in_a_batch(folder):
    dataset = create_dataset(root=folder, split="val", shuffle=True, num_aug_repeats=3)
    assert dataset.get_dataset_size() == 8
    loader = create_loader(dataset, 4, drop_remainder=True, transform=create_transforms(image_resize=16))
    for images, _ in _batches(loader):
        means = np.round(images.mean(axis=(1, 2, 3)), 5)
        assert len(set(means.tolist())) < len(means)
    # unshuffled: files 0, 0, 1, 1, 2, 2, 3, 3 (all cats: an epoch keeps its length, 8)
    ordered = create_dataset(root=folder, split="val", shuffle=False, num_aug_repeats=2)
    rows = list(ordered.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert [int(label) for _, label in rows] == [0] * 8
    assert all(np.array_equal(rows[i][0], rows[i + 1][0]) for i in range(0, 8, 2))
    assert not np.array_equal(rows[0][0], rows[2][0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_aug_repeats=-1), "num_aug_repeats=-1 must be an integer >= 0"),
        (dict(num_aug_repeats=True), "num_aug_repeats=True must be an integer"),
        (dict(num_aug_repeats=3, num_samples=4), "num_samples=4 and num_aug_repeats=3 cannot be combined"),
    ],
)
def test_bad_repeats(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        create_dataset("digits", **kwargs)


# ----------------------------------------------------------------------------------------------------------------------
# mixup of one-hot labels


class _Info:
    def get_epoch_num(self):
        return 0

    def get_batch_num(self):
        return 2


@pytest.mark.parametrize("kwargs", [dict(mixup_alpha=0.8), dict(mixup_alpha=0.0, cutmix_alpha=1.0)])
def test_one_hot_labels_mix_like_class_indices(kwargs):
    rng = np.random.default_rng(6)
    images = rng.normal(size=(5, 3, 8, 8)).astype(np.float32)
    labels = np.array([0, 2, 1, 2, 0], dtype=np.int32)
    mixer = Mixup(num_classes=3, seed=1, **kwargs)
    x_idx, y_idx = mixer([*images], [*labels], _Info())
    x_hot, y_hot = mixer([*images], [*np.eye(3, dtype=np.int32)[labels]], _Info())
    np.testing.assert_array_equal(x_hot, x_idx)
    np.testing.assert_array_equal(y_hot, y_idx)
    assert y_hot.dtype == np.float32 and y_hot.shape == (5, 3)
    with pytest.raises(DatasetError, match="labels are vectors of width 4 but num_classes=3"):
        mixer([*images], [*np.eye(4)[labels]], _Info())


def test_loader_mixes_one_hot_labels(folder):
    transform = create_transforms(image_resize=16, is_training=True)
    dataset = create_dataset(root=folder)
    # a single op (not a list) as the target transform, as upstream passes it
    loader = create_loader(
        dataset, 4, True, True, mixup=1.0, num_classes=2, target_transform=OneHot(2), transform=transform
    )
    for images, labels in _batches(loader):
        assert images.shape == (4, 3, 16, 16) and labels.shape == (4, 2) and labels.dtype == np.float32
        np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-6)


# ----------------------------------------------------------------------------------------------------------------------
# custom folder name, download root, dataset size, worker counts


def test_unnamed_dataset_is_an_image_folder(folder):
    dataset = create_dataset(root=folder, split="val")
    assert type(dataset) is ds.ImageFolderDataset and dataset.info.name == "imagenet"
    assert dataset.info.class_names == ("cat", "dog") and dataset.get_dataset_size() == 8
    assert create_loader(dataset, 2).output_shapes()[0] == [2, 3, 224, 224]


def test_download_root_is_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINDCV_HOME", str(tmp_path / "home"))
    root = get_dataset_download_root()
    assert root == str(tmp_path / "home" / "datasets") and os.path.isdir(root)
    with pytest.raises(DatasetError, match="CIFAR-10 not found in " + root):
        prepare_cifar("cifar10", None, "train", download=False)  # CIFAR's default root is the same folder


def test_get_dataset_size(folder):
    assert get_dataset_size("imagenet", folder, "train") == 12
    assert get_dataset_size("", folder, "val") == 8
    assert get_dataset_size(root=folder) == 12
    assert get_dataset_size("digits", split="val") == create_dataset("digits", split="val").get_dataset_size()
    with pytest.raises(DatasetError, match="needs root="):
        get_dataset_size("imagenet")
    with pytest.raises(DatasetError, match="has no split 'dev'"):
        get_dataset_size("cifar10", folder, "dev")


def test_more_workers_than_cpus_are_capped(folder, caplog):
    many = multiprocessing.cpu_count() + 6
    dataset = create_dataset(root=folder, split="val", num_parallel_workers=many)
    loader = create_loader(dataset, 2, transform=create_transforms(image_resize=16), num_parallel_workers=many)
    assert len(_batches(loader)) == 4
    assert f"num_parallel_workers={many} lowered to the" in caplog.text
