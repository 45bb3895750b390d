"""Classify image files: find them, preprocess them like the evaluation pipeline, batch, and rank classes.

Preprocessing is :func:`mindcv.data.resolve_data_config`'s (the model's ``pretrained_cfg`` with any override)
and uses the same MindSpore vision operations and resize arithmetic as ``create_transforms(...,
is_training=False)``: resize the shorter side to ``floor(size / crop_pct)``, centre-crop ``size``, normalise.
Images are decoded with PIL (any mode is converted to RGB) so that a broken file is reported by name and can be
skipped without stopping the run.

Class names come, in this order, from a names file, the ``class_names`` metadata of a checkpoint
trained on an image folder (a JSON list or newline-separated string), or the ImageNet-1k names
shipped with the package when the model has 1000 classes.
"""

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

import mindspore as ms
from mindspore import nn
from mindspore.dataset import vision

from ..data.constants import IMAGE_EXTENSIONS
from ..data.transforms_factory import INTERPOLATIONS, eval_resize_size
from ..errors import CheckpointError, ConfigError, DatasetError
from ..models import create_model, get_pretrained_cfg
from ..utils.checkpoint import read_checkpoint, split_checkpoint

__all__ = [
    "DEFAULT_MODEL",
    "IMAGENET_CLASSES_FILE",
    "InferenceResult",
    "list_images",
    "load_class_names",
    "imagenet_class_names",
    "resolve_class_names",
    "checkpoint_info",
    "build_inference_model",
    "preprocess_image",
    "softmax",
    "topk",
    "classify_files",
    "format_text",
]

_logger = logging.getLogger(__name__)

#: The model built when neither ``--model`` nor the checkpoint's metadata names one.
DEFAULT_MODEL = "res2net50"

#: The ImageNet-1k class names, one per line in index order after a ``#`` header line.
IMAGENET_CLASSES_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "imagenet_classes.txt")


@dataclass
class InferenceResult:
    """Predictions of :func:`classify_files`.

    Attributes:
        predictions: one dict per classified image, in input order:
            ``{"path": str, "topk": [{"index": int, "name": str, "prob": float}, ...]}``, most likely first.
        skipped: ``{"path": str, "error": str}`` for each image that could not be read.
    """

    predictions: List[Dict[str, Any]] = field(default_factory=list)
    skipped: List[Dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable view, with the counts."""
        return {
            "num_images": len(self.predictions),
            "num_skipped": len(self.skipped),
            "predictions": self.predictions,
            "skipped": self.skipped,
        }


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(inputs: Sequence[str]) -> List[str]:
    """Expand files and folders into the list of images to classify.

    Folders are searched recursively for the extensions in ``IMAGE_EXTENSIONS`` (any case), hidden
    files and folders excluded, in sorted order. A file named explicitly is taken whatever its
    extension (it is an error later if PIL cannot read it).

    Args:
        inputs: image files and/or folders.

    Returns:
        The image paths, without duplicates, in the order given (folder contents sorted).

    Raises:
        DatasetError: a path that does not exist, or no images at all.
    """
    found: List[str] = []
    for item in inputs:
        if os.path.isdir(item):
            for root, dirs, files in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith(".") and _is_image(f))
        elif os.path.isfile(item):
            found.append(item)
        else:
            raise DatasetError(f"image path {item} does not exist; pass image files or folders that exist")
    unique = list(dict.fromkeys(found))
    if not unique:
        raise DatasetError(
            f"no images found in {', '.join(inputs)}; folders are searched recursively for "
            f"{'/'.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)} files"
        )
    return unique


def load_class_names(path: str) -> List[str]:
    """Read class names, one per line in class-index order; blank lines and ``#`` lines are skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise ConfigError(f"class names file {path} does not exist; pass a text file with one name per line") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"class names file {path} cannot be read ({e}); pass a UTF-8 text file") from None
    names = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not names:
        raise ConfigError(f"class names file {path} holds no names; write one class name per line")
    return names


def imagenet_class_names() -> List[str]:
    """The 1000 ImageNet-1k class names shipped with the package, in class-index order."""
    return load_class_names(IMAGENET_CLASSES_FILE)


def _names_from_metadata(value: Any) -> Optional[List[str]]:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    text = str(value)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, list):
        return [str(v) for v in parsed]
    return [line for line in text.splitlines() if line.strip()]


def resolve_class_names(
    num_classes: int,
    class_names_file: Optional[str] = None,
    metadata: Optional[Dict[str, Any]] = None,
) -> List[str]:
    """Pick the class names for a model with ``num_classes`` outputs.

    Args:
        num_classes: classifier outputs.
        class_names_file: a names file (one per line); takes precedence.
        metadata: checkpoint metadata; its ``class_names`` entry is used when present.

    Returns:
        ``num_classes`` names; without any source and ``num_classes != 1000``, ``class_<i>``.

    Raises:
        ConfigError: a names file or metadata whose count differs from ``num_classes``.
    """
    if class_names_file:
        names, source = load_class_names(class_names_file), f"class names file {class_names_file}"
    else:
        names, source = _names_from_metadata((metadata or {}).get("class_names")), "the checkpoint's class_names"
    if names is not None:
        if len(names) != num_classes:
            raise ConfigError(
                f"{source} lists {len(names)} classes but the model has {num_classes}; pass a names file with "
                f"{num_classes} lines (--class_names) or the matching --num_classes"
            )
        return names
    if num_classes == 1000:
        return imagenet_class_names()
    _logger.warning("no class names for %d classes: printing class_<index>; pass --class_names FILE", num_classes)
    return [f"class_{i}" for i in range(num_classes)]


def checkpoint_info(path: str) -> Tuple[Dict[str, Tuple[int, ...]], Dict[str, Any]]:
    """Read a checkpoint's tensor shapes and metadata (e.g. ``model``, ``class_names`` from training).

    Args:
        path: ``.ckpt``/``.safetensors`` file.

    Returns:
        ``(shapes, metadata)``: name -> shape of every tensor, and the metadata dict.

    Raises:
        CheckpointError: a missing or corrupt file.
    """
    tensors, meta = split_checkpoint(read_checkpoint(path))
    return {name: tuple(int(d) for d in value.shape) for name, value in tensors.items()}, meta


def build_inference_model(
    model_name: Optional[str] = None,
    ckpt_path: str = "",
    pretrained: bool = False,
    num_classes: Optional[int] = None,
    in_channels: int = 3,
) -> Tuple[nn.Cell, Dict[str, Any]]:
    """Build a registered model with its weights for inference or export, in eval mode.

    Args:
        model_name: a name from ``list_models()``; default the checkpoint's ``model`` metadata (written
            by training), else :data:`DEFAULT_MODEL`.
        ckpt_path: a local checkpoint, loaded strictly (a missing or corrupt file is an error).
        pretrained: load the published weights instead.
        num_classes: classifier outputs; default the checkpoint's (read from its classifier weight),
            else 1000.
        in_channels: input image channels.

    Returns:
        ``(model, metadata)``, the metadata being the checkpoint's (empty without one).

    Raises:
        ConfigError: both weights sources, or a model name that contradicts the checkpoint's.
        CheckpointError: a missing, corrupt or non-fitting checkpoint.
    """
    metadata: Dict[str, Any] = {}
    if ckpt_path:
        if pretrained:
            raise ConfigError("both --pretrained and --ckpt_path given; use one of them")
        shapes, metadata = checkpoint_info(ckpt_path)
        saved = metadata.get("model")
        assumed = model_name is None and not saved
        if model_name is None:
            model_name = saved or DEFAULT_MODEL
        elif saved and saved != model_name:
            raise ConfigError(
                f"checkpoint {ckpt_path} was trained as '{saved}' but --model is '{model_name}'; pass --model {saved} "
                "or leave --model out"
            )
        classifier = f"{get_pretrained_cfg(model_name).get('classifier') or 'classifier'}.weight"
        if num_classes is None:
            if classifier not in shapes:
                raise CheckpointError(
                    f"checkpoint {ckpt_path} has no '{classifier}', so its class count is unknown; pass --num_classes"
                )
            num_classes = shapes[classifier][0]
    try:
        model = create_model(
            model_name or DEFAULT_MODEL,
            num_classes=1000 if num_classes is None else num_classes,
            pretrained=pretrained,
            in_channels=in_channels,
            checkpoint_path=ckpt_path,
        )
    except CheckpointError as e:
        if ckpt_path and assumed:
            raise CheckpointError(
                f"checkpoint {ckpt_path} names no model and does not fit the default {DEFAULT_MODEL}; pass "
                f"--model NAME ({str(e).split(': ', 1)[-1][:160]})"
            ) from e
        raise
    model.set_train(False)
    return model, metadata


def preprocess_image(path: str, data_config: Dict[str, Any]) -> np.ndarray:
    """Decode, resize, centre-crop and normalise one image, as evaluation does.

    Args:
        path: image file.
        data_config: from :func:`mindcv.data.resolve_data_config`.

    Returns:
        float32 array (3, size, size).

    Raises:
        DatasetError: the file cannot be opened or decoded (message names the file).
    """
    try:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError...) for bad files
        raise DatasetError(f"cannot read image {path}: {type(e).__name__}: {e}") from e
    size = data_config["image_size"]
    inter = INTERPOLATIONS[data_config["interpolation"]]
    # Same arithmetic and ops as the evaluation transform, so infer agrees with validate.py.
    resized = vision.Resize(eval_resize_size(size, data_config["crop_pct"]), interpolation=inter)(rgb)
    cropped = vision.CenterCrop(size)(resized).astype(np.float32) / 255.0
    mean = np.asarray(data_config["mean"], dtype=np.float32)
    std = np.asarray(data_config["std"], dtype=np.float32)
    return np.ascontiguousarray(((cropped - mean) / std).transpose(2, 0, 1))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, stable for large logits."""
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def topk(probs: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest entries of each row, largest first (ties: lower index first).

    ``k`` is capped at the number of classes.
    """
    k = min(int(k), probs.shape[-1])
    order = np.argsort(-probs, axis=-1, kind="stable")[..., :k]
    return order, np.take_along_axis(probs, order, axis=-1)


def _batches(files: Sequence[str], batch_size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(files), batch_size):
        yield files[start : start + batch_size]


def classify_files(
    model: Union[nn.Cell, Callable[[np.ndarray], np.ndarray]],
    files: Sequence[str],
    class_names: Sequence[str],
    data_config: Dict[str, Any],
    batch_size: int = 8,
    k: int = 5,
    strict: bool = False,
    fixed_batch: bool = False,
) -> InferenceResult:
    """Classify ``files`` in batches and return the top-``k`` classes of each.

    Args:
        model: the network (put in eval mode here), or a predictor mapping a float32 numpy batch to numpy logits
            (:class:`mindcv.deploy.OnnxRuntimeModel`); a predictor always gets full batches (``fixed_batch``).
        files: image paths, e.g. from :func:`list_images`.
        class_names: one name per model output.
        data_config: from :func:`mindcv.data.resolve_data_config`.
        batch_size: images per forward pass.
        k: classes reported per image (capped at the number of classes).
        strict: raise on the first unreadable image instead of skipping it with a warning.
        fixed_batch: pad every batch to ``batch_size`` (with zeros, results dropped), so that a
            compiled graph (GRAPH_MODE) sees one shape and is built once.

    Returns:
        An :class:`InferenceResult`.

    Raises:
        DatasetError: with ``strict``, the first unreadable image.
        ConfigError: ``batch_size`` or ``k`` below 1, or ``class_names`` not matching the outputs.
    """
    if batch_size < 1 or k < 1:
        raise ConfigError(f"batch_size and topk must be >= 1, got {batch_size} and {k}")
    is_cell = isinstance(model, nn.Cell)
    if is_cell:
        model.set_train(False)
    else:
        fixed_batch = True  # one input shape: one export and one session
    result = InferenceResult()
    size = data_config["image_size"]
    for chunk in _batches(list(files), batch_size):
        images, paths = [], []
        for path in chunk:
            try:
                images.append(preprocess_image(path, data_config))
                paths.append(path)
            except DatasetError as e:
                if strict:
                    raise
                _logger.warning("%s; skipped (--strict makes this an error)", e)
                result.skipped.append({"path": path, "error": str(e)})
        if not images:
            continue
        batch = np.stack(images)
        if fixed_batch and len(images) < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - len(images), 3, size, size), np.float32)])
        logits = (model(ms.Tensor(batch)).asnumpy() if is_cell else np.asarray(model(batch)))[: len(images)]
        if logits.ndim != 2 or logits.shape[1] != len(class_names):
            raise ConfigError(
                f"the model outputs shape {logits.shape} but {len(class_names)} class names were given; "
                "check --num_classes and --class_names"
            )
        indices, values = topk(softmax(logits), k)
        for path, idx_row, val_row in zip(paths, indices, values):
            result.predictions.append(
                {
                    "path": path,
                    "topk": [
                        {"index": int(i), "name": class_names[int(i)], "prob": float(p)}
                        for i, p in zip(idx_row, val_row)
                    ],
                }
            )
    return result


def format_text(result: InferenceResult) -> str:
    """Human-readable listing: each path, then its top-k lines ``prob  [index] name``."""
    lines = []
    for pred in result.predictions:
        lines.append(pred["path"])
        lines.extend(f"  {t['prob']:.4f}  [{t['index']}] {t['name']}" for t in pred["topk"])
    for skip in result.skipped:
        lines.append(f"skipped {skip['path']}: {skip['error']}")
    lines.append(f"{len(result.predictions)} image(s) classified, {len(result.skipped)} skipped")
    return "\n".join(lines)
