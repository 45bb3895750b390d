"""Throughput of the mindcv data pipelines (images per second) on generated, realistically sized JPEGs.

Writes ``--num-images`` photo-like 500x375 JPEGs (ImageNet's typical size, ~110 kB each) into a
temporary ImageNet-style folder, then times ``--epochs`` epochs (after a warm-up epoch; the median epoch
is reported) of:

* ``train``: RandomResizedCrop 224 + flip + normalise (the default ImageNet training transforms);
* ``train+aug``: the same with ``randaug-m9-n2-mstd0.5``, random erasing 0.25 and mixup/cutmix;
* ``eval``: resize 256 + centre crop 224 + normalise;
* ``train, Python reader``: ``train`` when a bad file was skipped, so a Python source reads the files;
* ``digits train``: the shipped 32x32 dataset with pad-crop + normalise, the CIFAR-size path;

with 1 and 2 worker threads, and the cost per file of the image checks done by ``create_dataset``.
Compare with what training consumes (``benchmark.py``, ``benchmarks/compare.py``): a pipeline slower
than the training step starves it. The figures measured so far are in ``docs/performance.md``.

Usage::

    python benchmarks/data_pipeline.py [--num-images 256] [--batch-size 32] [--workers 1 2]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import Callable, List, Optional

import numpy as np
from PIL import Image

from mindcv.data import create_dataset, create_loader, create_transforms
from mindcv.data.folder import check_images, scan_image_folder


def make_jpegs(root: str, num_images: int, num_classes: int = 4, seed: int = 0) -> None:
    """Write photo-like 500x375 JPEGs (smooth gradients + noise, quality 90) into ``root/train/<class>``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:375, 0:500].astype(np.float32)
    for i in range(num_images):
        folder = os.path.join(root, "train", f"class_{i % num_classes}")
        os.makedirs(folder, exist_ok=True)
        phase = rng.uniform(0, 2 * np.pi, 3)
        freq = rng.uniform(0.005, 0.03, 3)
        base = np.stack([127 + 100 * np.sin(freq[c] * (xx + yy * (c + 1)) + phase[c]) for c in range(3)], -1)
        noise = rng.normal(0, 12, base.shape)
        img = np.clip(base + noise, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(folder, f"img_{i:05d}.jpg"), quality=90)


def time_epochs(make_loader: Callable, num_samples: int, epochs: int) -> float:
    """Median images per second over ``epochs`` epochs, after a warm-up epoch (start-up excluded).

    The median of several epochs, because on a shared 2-core machine one epoch can be slowed by others.
    """
    loader = make_loader()
    iterator = loader.create_tuple_iterator(num_epochs=epochs + 1, output_numpy=True)
    for _ in iterator:  # warm-up: threads start, page cache fills
        pass
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        seen = sum(image.shape[0] for image, _ in iterator)
        rates.append(seen / (time.perf_counter() - start))
        assert seen == num_samples, (seen, num_samples)
    return float(np.median(rates))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-images", type=int, default=256, help="JPEGs to generate")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker thread counts to time")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per pipeline (the median is shown)")
    parser.add_argument("--keep", default=None, help="generate into this folder and keep it (default: a temp folder)")
    args = parser.parse_args(argv)

    root = args.keep or tempfile.mkdtemp(prefix="mindcv-bench-")
    try:
        if not os.path.isdir(os.path.join(root, "train")):
            t0 = time.perf_counter()
            make_jpegs(root, args.num_images)
            print(f"generated {args.num_images} JPEGs in {time.perf_counter() - t0:.1f} s under {root}")
        files = scan_image_folder(root, "train").files
        sizes = [os.path.getsize(p) for p, _ in files]
        print(f"{len(files)} files, mean {np.mean(sizes) / 1024:.0f} kB, 500x375")

        for level in ("header", "full"):
            scan = scan_image_folder(root, "train")
            t0 = time.perf_counter()
            check_images(scan, level)
            print(f"image_check={level!r}: {(time.perf_counter() - t0) / len(files) * 1e6:.0f} us per file")

        size, bs = args.image_size, args.batch_size
        rows = []
        for workers in args.workers:

            def imagenet_loader(training: bool, heavy: bool = False, skip: bool = False) -> Callable:
                def make():
                    dataset = create_dataset(
                        "imagenet", root, "train", shuffle=training, num_parallel_workers=workers, skip_bad_images=skip
                    )
                    extra = dict(auto_augment="randaug-m9-n2-mstd0.5", re_prob=0.25) if heavy else {}
                    transform = create_transforms("imagenet", size, is_training=training, **extra)
                    mix = dict(mixup=0.2, cutmix=1.0) if heavy else {}
                    return create_loader(
                        dataset, bs, is_training=training, transform=transform, num_parallel_workers=workers, **mix
                    )

                return make

            def digits_loader() -> Callable:
                def make():
                    dataset = create_dataset("digits", split="train", num_parallel_workers=workers)
                    transform = create_transforms("digits", 32, is_training=True)
                    return create_loader(
                        dataset, bs, is_training=True, transform=transform, num_parallel_workers=workers
                    )

                return make

            n, e = len(files), args.epochs
            rows.append((f"train {size}", workers, time_epochs(imagenet_loader(True), n, e)))
            rows.append((f"train+aug {size}", workers, time_epochs(imagenet_loader(True, heavy=True), n, e)))
            rows.append((f"eval {size}", workers, time_epochs(imagenet_loader(False), n, e)))
            rows.append(("digits train 32", workers, time_epochs(digits_loader(), 1442, 3 * e)))
            # With a bad file skipped, the accepted files are read by a Python source instead of ImageFolderDataset.
            bad = os.path.join(root, "train", "class_0", "zz_bad.jpg")
            open(bad, "wb").close()
            try:
                rows.append(
                    (f"train {size}, Python reader", workers, time_epochs(imagenet_loader(True, skip=True), n, e))
                )
            finally:
                os.remove(bad)

        print()
        print("| pipeline | workers | img/s |")
        print("|---|---|---|")
        for name, workers, rate in rows:
            print(f"| {name} | {workers} | {rate:.0f} |")
        print(f"\n(os.cpu_count()={os.cpu_count()}, batch {bs}, python {sys.version.split()[0]})")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
