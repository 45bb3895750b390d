"""One compiled training step: forward, loss scaling, gradients, all-reduce, clipping, accumulation, update, EMA.

:class:`TrainStep` is a Cell whose ``construct`` is wrapped in ``mindspore.jit``, so it runs as one compiled graph in
both PyNative and Graph mode, and nothing in it waits for the host: it returns the loss and an overflow flag as
Tensors and the caller decides when to read them.

Order of operations in a step::

    loss  = loss_fn(network(images), labels)            (AMP casts inside the network)
    grads = d(loss * scale) / d(weights) / scale          (scale = current loss scale)
    grads = mean of grads over ranks                      (distribute=True)
    [accumulate grads; stop here unless this is the N-th micro-step, then use the mean of the N]
    finite = all grads finite (with AMP or loss scaling; plain fp32: the loss is finite)
    dynamic scaling: adjust the scale from `finite`
    grads = clip_by_global_norm(grads, clip_value)        (clip_grad=True)
    if finite: optimizer(grads); ema()                    (skip_nonfinite, the default: skipped whatever the scaling)

``skip_nonfinite=False`` drops that branch and applies every update, reporting a non-finite one in ``overflow``
(with a fixed scale :class:`~mindcv.engine.trainer.Trainer` stops on it anyway, keeping the last checkpoint; timm
and MindSpore's ``TrainOneStepCell`` neither check nor skip). MindSpore's runtime pays per kernel inside the
branch, so with ``nn.Momentum``'s 343 update kernels it cost a measurable share of a small step; without the branch
the kernel order changed and res2net50_v1b's training peak at 224 rose. With the CPU default
:class:`~mindcv.optim.fused.FusedMomentum` (one update kernel) skipping and not skipping measure the same, so
skipping stays the default (figures: ``docs/performance.md``).

BatchNorm moving statistics are updated by the forward pass itself, so they change even on a skipped update (as in
MindSpore's ``TrainOneStepWithLossScaleCell``). An overflow confined to the scaled backward pass leaves them finite;
an inf/NaN already present in the input or the forward pass (then the returned loss is non-finite) reaches them too.

Resume: every piece of state is a Parameter reachable from this Cell, listed by :meth:`TrainStep.state_parameters`:
the network's weights and BN statistics, the optimizer's ``global_step`` (which indexes the learning-rate schedule),
moments and learning rate, the loss scale and its growth counter (``train_step.loss_scale``,
``train_step.loss_scale_counter``), the accumulation buffers and micro-step counter (``train_step.accum_grads.*``,
``train_step.accum_step``), and the EMA weights (``ema.*``). Save and restore them with::

    ms.save_checkpoint([{"name": p.name, "data": p} for p in step.state_parameters()], path)
    ms.load_param_into_net(step, ms.load_checkpoint(path), strict_load=True)

Mixed precision on the CPU: MindSpore's CPU kernels run float16 slower than float32 and have no bfloat16
convolutions, so ``amp_level="O0"`` is the CPU default; O1-O3 are meant for GPU/Ascend (O2/O3 with float16 do run on
the CPU, just slower). O1 goes through MindSpore's network rewriter, which writes the rewritten network's Python source
into ``./rewritten_network/`` under the current directory.
"""

from typing import List, Optional, Sequence, Tuple, Union

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.ops import functional as F

from ..errors import ConfigError
from .ema import EMA

__all__ = ["TrainStep", "AMP_LEVELS", "LOSS_SCALE_TYPES", "resolve_amp_cast_list", "mixed_precision"]

AMP_LEVELS = ("O0", "O1", "O2", "O3")
LOSS_SCALE_TYPES = ("fixed", "dynamic", "auto")


def resolve_amp_cast_list(cast_list: Optional[Union[str, Sequence[type]]]) -> Optional[List[type]]:
    """``--amp_cast_list`` (upstream's string such as ``"[nn.Conv2d, nn.Dense]"``, or Cell classes) as classes.

    Names are looked up in ``mindspore.nn`` (``nn.``/``mindspore.nn.`` prefixes optional), never evaluated.

    Raises:
        ConfigError: A name that is no Cell class of ``mindspore.nn``.
    """
    if cast_list is None or (isinstance(cast_list, str) and not cast_list.strip()):
        return None
    if not isinstance(cast_list, str):
        return list(cast_list)
    out = []
    for name in cast_list.strip().strip("[]()").split(","):
        name = name.strip()
        if not name:
            continue
        short = name.split(".")[-1]
        cls = getattr(nn, short, None)
        if not (isinstance(cls, type) and issubclass(cls, nn.Cell)):
            raise ConfigError(
                f"--amp_cast_list: '{name}' is not a cell class of mindspore.nn; write e.g. '[nn.Conv2d, nn.Dense]'"
            )
        out.append(cls)
    return out or None


class _Float32Output(nn.Cell):
    """Runs ``network`` and casts its output to float32 (parameter names unchanged)."""

    def __init__(self, network: nn.Cell) -> None:
        super().__init__(auto_prefix=False)
        self.network = network

    def construct(self, *inputs: Tensor) -> Tensor:
        return ops.cast(self.network(*inputs), ms.float32)


def mixed_precision(
    network: nn.Cell, amp_level: str = "O0", cast_list: Optional[Union[str, Sequence[type]]] = None
) -> nn.Cell:
    """Cast ``network`` for ``amp_level`` in place (float16) and return the Cell to call, whose output is float32.

    O1 runs the cells of the white list (MindSpore's: convolutions and Dense layers, subclasses included, or
    ``cast_list``) in float16 and everything else in float32. It marks the cells (``Cell.to_float``) instead of using
    ``mindspore.amp.auto_mixed_precision``'s O1, whose network rewriter re-imports every model class from generated
    source by its bare module name and so fails for any model defined in a package with relative imports (all of
    ours). O2 keeps the black list (BatchNorm/LayerNorm, or ``cast_list``) in float32, O3 casts everything; both are
    MindSpore's.
    """
    cells = resolve_amp_cast_list(cast_list)
    if amp_level == "O0":
        return network
    if amp_level == "O1":
        white = tuple(cells) if cells else tuple(ms.amp.get_white_list())
        network.to_float(ms.float32)
        for _, cell in network.cells_and_names():
            if isinstance(cell, white):
                cell.to_float(ms.float16)
        return _Float32Output(network)
    if amp_level == "O2" and cells:
        return ms.amp.custom_mixed_precision(network, black_list=cells, dtype=ms.float16)
    return ms.amp.auto_mixed_precision(network, amp_level, dtype=ms.float16)


def _unscale(inv_scale: Tensor, grad: Tensor) -> Tensor:
    return grad * inv_scale.astype(grad.dtype)


def _accumulate(buffer: Parameter, grad: Tensor) -> Tensor:
    return ops.assign_add(buffer, grad.astype(buffer.dtype))


def _clear(buffer: Parameter) -> Tensor:
    return ops.assign(buffer, ops.zeros_like(buffer))


def _mean_of(count: float, buffer: Parameter) -> Tensor:
    return buffer / count


class TrainStep(nn.Cell):
    """A training step for ``network`` with ``loss_fn`` and ``optimizer``; call it as ``loss, overflow = step(x, y)``.

    Args:
        network: The model. AMP is applied to it in place, and the step puts it in training mode on construction;
            after evaluating with ``network.set_train(False)``, call ``network.set_train(True)`` before the next step.
        loss_fn: Cell or function ``loss_fn(logits, labels) -> scalar Tensor`` (mean over the batch).
        optimizer: A ``mindspore.nn.Optimizer`` over the network's trainable parameters, created with
            ``loss_scale=1.0`` (this step unscales the gradients itself).
        amp_level: ``"O0"`` (float32), ``"O1"``, ``"O2"`` or ``"O3"``; passed to
            ``mindspore.amp.auto_mixed_precision`` with float16. Keep O0 on the CPU.
        amp_cast_list: O1: the only cell types cast to float16; O2: the cell types kept in float32 (see
            :func:`resolve_amp_cast_list`); ignored at O0/O3. None: MindSpore's built-in lists.
        loss_scale_type: ``"fixed"`` (constant ``loss_scale``), ``"dynamic"`` (start at ``loss_scale``, divide by
            ``scale_factor`` on overflow, multiply after ``scale_window`` clean updates) or ``"auto"`` (dynamic
            with AMP, fixed with O0).
        loss_scale: The fixed scale, or the initial dynamic scale (>= 1).
        scale_factor: Dynamic scaling: factor of each decrease and increase (> 1).
        scale_window: Dynamic scaling: clean updates in a row before the scale grows.
        clip_grad: Clip the gradients' global L2 norm to ``clip_value`` (after unscaling and averaging).
        clip_value: Maximum global norm when ``clip_grad``.
        gradient_accumulation_steps: Micro-batches per update. Each call adds its gradients to buffers; every N-th
            call applies their mean, so the optimizer's step counter and the learning-rate schedule advance once
            per N calls. Batch-norm statistics still update on every micro-batch.
        ema: Optional :class:`~mindcv.engine.ema.EMA` of ``network``, updated after each applied update.
        distribute: Average gradients over all ranks with ``nn.DistributedGradReducer`` (needs
            ``mindspore.communication.init()`` before construction, e.g. under ``msrun``). Gradients are reduced on
            every micro-step, outside any branch, so every rank runs the same collectives.
        check_gradients: Test every gradient for inf/NaN before the update. ``None`` (default) does so when it can
            matter, i.e. with AMP or a loss scale other than a fixed 1; plain float32 training then checks only the
            loss, whose non-finite value accompanies a non-finite gradient. The full check costs an IsFinite and a
            ReduceAll per parameter, a noticeable share of a small-input step (see docs/performance.md).
        skip_nonfinite: Leave weights, optimizer state and EMA untouched when the check fails (default). ``False``
            applies every update (see the module docstring for the trade-off); ``overflow`` is returned either way.

    Returns (when called):
        ``(loss, overflow)``: the micro-batch loss (float32, unscaled) and a bool scalar that is True when a
        gradient (or, in plain float32, the loss) was inf/NaN; that update was skipped if ``skip_nonfinite``. With
        accumulation, ``overflow`` refers to the update of the N-th call and is False on the other calls.

    Raises:
        ConfigError: an argument is out of range, or the optimizer has its own loss scale.
    """

    def __init__(
        self,
        network: nn.Cell,
        loss_fn: nn.Cell,
        optimizer: nn.Optimizer,
        amp_level: str = "O0",
        loss_scale_type: str = "fixed",
        loss_scale: float = 1.0,
        scale_factor: float = 2.0,
        scale_window: int = 2000,
        clip_grad: bool = False,
        clip_value: float = 15.0,
        gradient_accumulation_steps: int = 1,
        ema: Optional[EMA] = None,
        distribute: bool = False,
        check_gradients: Optional[bool] = None,
        skip_nonfinite: bool = True,
        amp_cast_list: Optional[Union[str, Sequence[type]]] = None,
    ) -> None:
        # auto_prefix=False keeps the network's parameter names unchanged ("conv1.weight", not "network.conv1...").
        super().__init__(auto_prefix=False)
        if amp_level not in AMP_LEVELS:
            raise ConfigError(f"amp_level must be one of {', '.join(AMP_LEVELS)}, got '{amp_level}'")
        if loss_scale_type not in LOSS_SCALE_TYPES:
            raise ConfigError(f"loss_scale_type must be one of {', '.join(LOSS_SCALE_TYPES)}, got '{loss_scale_type}'")
        if loss_scale < 1.0:
            raise ConfigError(f"loss_scale must be >= 1, got {loss_scale}")
        if scale_factor <= 1.0 or scale_window < 1:
            raise ConfigError(f"need scale_factor > 1 and scale_window >= 1, got {scale_factor} and {scale_window}")
        if clip_grad and clip_value <= 0:
            raise ConfigError(f"clip_value must be positive, got {clip_value}")
        if int(gradient_accumulation_steps) != gradient_accumulation_steps or gradient_accumulation_steps < 1:
            raise ConfigError(
                f"gradient_accumulation_steps must be a positive integer, got {gradient_accumulation_steps}"
            )
        if getattr(optimizer, "loss_scale", 1.0) != 1.0:
            raise ConfigError("create the optimizer with loss_scale=1.0: TrainStep unscales the gradients itself")

        if loss_scale_type == "auto":
            loss_scale_type = "fixed" if amp_level == "O0" else "dynamic"
        self.amp_level = amp_level
        self.loss_scale_type = loss_scale_type
        self.dynamic = loss_scale_type == "dynamic"
        self.scale_factor = float(scale_factor)
        self.scale_window = int(scale_window)
        self.clip_grad = bool(clip_grad)
        self.clip_value = float(clip_value)
        self.accum_steps = int(gradient_accumulation_steps)
        self.distribute = bool(distribute)
        # With a fixed scale of 1 the scaling multiplies are no-ops; skip them (one Mul per parameter).
        self.scaled = self.dynamic or float(loss_scale) != 1.0
        self.check_gradients = (self.scaled or amp_level != "O0") if check_gradients is None else bool(check_gradients)
        self.skip_nonfinite = bool(skip_nonfinite)

        # O1-O3 cast the network in place and return a wrapper that casts the output back to float32; the parameters
        # stay the same objects, so the optimizer and the EMA keep tracking them.
        self.network = mixed_precision(network, amp_level, amp_cast_list)
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.ema = ema
        self.hyper_map = ops.HyperMap()

        # State, not weights: requires_grad=False keeps these out of trainable_params() of any wrapper.
        self.scale_value = Parameter(
            Tensor(float(loss_scale), ms.float32), name="train_step.loss_scale", requires_grad=False
        )
        self.scale_counter = Parameter(Tensor(0, ms.int32), name="train_step.loss_scale_counter", requires_grad=False)
        if self.accum_steps > 1:
            self.accum_grads = self.weights.clone(prefix="train_step.accum_grads", init="zeros")
            for buffer in self.accum_grads:
                buffer.requires_grad = False
            self.accum_step = Parameter(Tensor(0, ms.int32), name="train_step.accum_step", requires_grad=False)
        if self.distribute:
            self.grad_reducer = nn.DistributedGradReducer(self.weights, mean=True)
        self.grad_fn = ms.value_and_grad(self._forward, None, self.weights, has_aux=True)
        self.set_train(True)

    def _forward(self, images: Tensor, labels: Tensor, scale: Tensor) -> Tuple[Tensor, Tensor]:
        loss = self.loss_fn(self.network(images), labels)
        if not self.scaled:
            return loss, loss
        # Differentiate the scaled loss (so float16 gradients stay above underflow); return the plain one as aux.
        return loss * scale.astype(loss.dtype), loss

    def _adjust_scale(self, finite: Tensor) -> Tensor:
        """Dynamic loss scaling without branches: shrink on overflow, grow after scale_window clean updates."""
        scale = self.scale_value
        counter = self.scale_counter + 1
        grow = ops.logical_and(finite, counter >= self.scale_window)
        grown = scale * self.scale_factor
        grown = ops.select(ops.isfinite(grown), grown, scale)
        shrunk = ops.maximum(scale / self.scale_factor, ops.ones_like(scale))
        new_scale = ops.select(finite, ops.select(grow, grown, scale), shrunk)
        new_counter = ops.select(ops.logical_and(finite, ops.logical_not(grow)), counter, ops.zeros_like(counter))
        ops.assign(self.scale_value, new_scale)
        return ops.assign(self.scale_counter, new_counter)

    def _update(self, grads: Tuple[Tensor, ...], loss: Tensor) -> Tuple[Tensor, Tensor]:
        """Check, clip and apply mean gradients (unless skipped); returns (loss, overflow)."""
        finite = ms.amp.all_finite(grads) if self.check_gradients else ops.isfinite(loss).all()
        if self.dynamic:
            loss = F.depend(loss, self._adjust_scale(finite))
        if self.clip_grad:
            grads = ops.clip_by_global_norm(grads, self.clip_value)
        if self.skip_nonfinite:  # a Python bool: decided when the graph is compiled
            if finite:
                loss = self._apply(grads, loss)
        else:
            loss = self._apply(grads, loss)
        return loss, ops.logical_not(finite)

    def _apply(self, grads: Tuple[Tensor, ...], loss: Tensor) -> Tensor:
        loss = F.depend(loss, self.optimizer(grads))
        if self.ema is not None:
            loss = F.depend(loss, self.ema())
        return loss

    @ms.jit
    def construct(self, images: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
        scale = self.scale_value
        (_, loss), grads = self.grad_fn(images, labels, scale)
        if self.scaled:
            grads = self.hyper_map(F.partial(_unscale, ops.reciprocal(scale)), grads)
        if self.distribute:
            grads = self.grad_reducer(grads)
        if self.accum_steps == 1:
            return self._update(grads, loss)

        loss = F.depend(loss, self.hyper_map(_accumulate, self.accum_grads, grads))
        step = self.accum_step + 1
        loss = F.depend(loss, ops.assign(self.accum_step, step % self.accum_steps))
        overflow = ops.zeros((), ms.bool_)
        if step == self.accum_steps:
            mean_grads = self.hyper_map(F.partial(_mean_of, float(self.accum_steps)), self.accum_grads)
            loss, overflow = self._update(mean_grads, loss)
            loss = F.depend(loss, self.hyper_map(_clear, self.accum_grads))
        return loss, overflow

    @property
    def global_step(self) -> Parameter:
        """The optimizer's update counter (int32, shape (1,)); entry ``global_step`` of the lr schedule is next."""
        return self.optimizer.global_step

    @property
    def loss_scale(self) -> Parameter:
        """The current loss scale (float32 scalar Parameter)."""
        return self.scale_value

    def state_parameters(self) -> List[Parameter]:
        """Every Parameter needed to resume exactly, each once, with unique names (see the module docstring)."""
        params: List[Parameter] = []
        seen = set()
        for param in self.get_parameters():
            if id(param) not in seen:
                seen.add(id(param))
                params.append(param)
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(f"parameter names collide in the train state: {dup}; rename them in the model")
        return params
