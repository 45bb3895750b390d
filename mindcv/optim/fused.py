"""Momentum SGD whose whole update is one CPU kernel (the counterpart of PyTorch's multi-tensor SGD).

MindSpore's ``nn.Momentum`` launches an ``ApplyMomentum`` kernel per parameter, plus a weight-decay kernel per decayed
parameter: 343 launches per res2net50 step. On the CPU each launch costs MindSpore's runtime framework work besides
the kernel itself, and the separate decay pass reads and writes every weight once more. :class:`FusedMomentum` does the
same update, ``moment = momentum * moment + (grad + decay * param); param -= lr * moment``, for all parameters in one
C++ kernel (``csrc/fused_momentum.cc``), run by MindSpore as an ``aot`` Custom operator: one launch and one pass over
memory, which shortens the update's kernel time and the step (measured: ``docs/performance.md``). The result equals
``nn.Momentum`` up to float rounding.

The kernel is compiled with the system C++ compiler (``$CXX`` or ``g++``) on first use and cached in
``$MINDCV_HOME/kernels`` (``~/.cache/mindcv/kernels``), keyed by the source and the compiler. The operator updates
the parameters in place and is marked as having memory side effects, so MindSpore orders it after every read of the
parameters in the step and before anything that reads them afterwards (the EMA). Checkpoints are unchanged: the
state is ``nn.Momentum``'s (``moments.*``, ``momentum``, ``learning_rate``, ``global_step``).

:func:`mindcv.optim.create_optimizer` uses it for ``opt="momentum"`` on the CPU when it can (``fused=None``, the
default); GPU/Ascend, Nesterov momentum, per-group learning rates, a weight-decay schedule, gradient centralisation,
a loss scale other than 1 and non-float32 parameters keep ``nn.Momentum``.
"""

import functools
import hashlib
import logging
import os
import shutil
import subprocess
from typing import Optional, Tuple

import numpy as np

import mindspore as ms
from mindspore import Tensor, ops

from ..errors import ConfigError, DownloadError
from ..utils.download import get_cache_dir
from .l2_decay import Momentum

__all__ = ["FusedMomentum", "FusedKernelError", "build_fused_kernel", "KERNEL_SOURCE"]

_logger = logging.getLogger(__name__)

KERNEL_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", "fused_momentum.cc")
_KERNEL_SYMBOL = "FusedMomentum"
_CXX_FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC")
_MAX_THREADS = 8  # the update is memory-bound: more threads than this do not help


class FusedKernelError(ConfigError):
    """The fused optimizer cannot be used here; the message says why and what to do instead."""


def _compiler_identity(compiler: str) -> str:
    try:
        done = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise FusedKernelError(f"the C++ compiler {compiler} does not run ({e})") from None
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else compiler


@functools.lru_cache(maxsize=None)
def build_fused_kernel(compiler: Optional[str] = None, cache_dir: Optional[str] = None) -> str:
    """Compile ``csrc/fused_momentum.cc`` once and return the shared library's path.

    Args:
        compiler: C++ compiler command; defaults to ``$CXX``, else ``g++``.
        cache_dir: Where the library is kept; defaults to ``$MINDCV_HOME/kernels``.

    The library is written under a temporary name and renamed into place, so concurrent processes (``msrun``
    ranks) and interrupted builds never leave a half-written file under the final name.

    Raises:
        FusedKernelError: no compiler, no writable cache folder, or the build failed (the message ends with the
            compiler's last lines).
    """
    compiler = compiler or os.environ.get("CXX") or "g++"
    executable = shutil.which(compiler)
    if executable is None:
        raise FusedKernelError(
            f"no C++ compiler '{compiler}' on PATH to build the fused optimizer kernel; install g++ (or set CXX)"
        )
    with open(KERNEL_SOURCE, "rb") as f:
        source = f.read()
    key = hashlib.sha256(
        b"\0".join([source, _compiler_identity(executable).encode(), " ".join(_CXX_FLAGS).encode()])
    ).hexdigest()[:16]
    try:
        folder = cache_dir or get_cache_dir("kernels")
        os.makedirs(folder, exist_ok=True)
    except (DownloadError, OSError) as e:
        raise FusedKernelError(f"no folder for the fused optimizer kernel: {e}") from None
    library = os.path.join(folder, f"fused_momentum-{key}.so")
    if os.path.isfile(library):
        return library
    partial = f"{library}.{os.getpid()}.part"
    command = [executable, *_CXX_FLAGS, "-o", partial, KERNEL_SOURCE, "-lpthread"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise FusedKernelError(f"building the fused optimizer kernel failed ({' '.join(command)}): {tail}")
        os.replace(partial, library)
    except (OSError, subprocess.SubprocessError) as e:
        raise FusedKernelError(f"building the fused optimizer kernel failed: {e}") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return library


def _thread_budget() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, _MAX_THREADS))


class FusedMomentum(Momentum):
    """``nn.Momentum`` (with :mod:`~mindcv.optim.l2_decay`'s one-pass L2 decay) as a single CPU kernel per step.

    Arguments are ``nn.Momentum``'s; ``kernel`` is the compiled library (default: :func:`build_fused_kernel`).

    Raises:
        FusedKernelError: the device is not the CPU, the configuration is one the kernel does not implement (see
            the module docstring), or the kernel cannot be built. Use :class:`~mindcv.optim.l2_decay.Momentum` then.
    """

    def __init__(
        self,
        params,
        learning_rate,
        momentum: float,
        weight_decay=0.0,
        loss_scale: float = 1.0,
        use_nesterov: bool = False,
        kernel: Optional[str] = None,
    ) -> None:
        device = ms.get_context("device_target")
        if device != "CPU":
            raise FusedKernelError(f"the fused optimizer kernel runs on the CPU only, this is {device}")
        if use_nesterov:
            raise FusedKernelError("the fused optimizer kernel has no Nesterov momentum")
        super().__init__(
            params, learning_rate, momentum, weight_decay=weight_decay, loss_scale=loss_scale, use_nesterov=False
        )
        reason = self._unsupported()
        if reason:
            raise FusedKernelError(f"the fused optimizer kernel does not implement {reason}")
        library = kernel or build_fused_kernel()
        self.decays_reversed = Tensor(np.array(self.constant_decays[::-1], np.float32))
        self.threads = Tensor(np.array([_thread_budget()], np.int32))
        self.fused_update = ops.Custom(
            f"{library}:{_KERNEL_SYMBOL}", out_shape=(1,), out_dtype=ms.float32, func_type="aot"
        )
        # It writes its parameter and moment inputs: order it like Assign, after earlier reads, before later ones.
        self.fused_update.add_prim_attr("side_effect_mem", True)

    def _unsupported(self) -> str:
        if self.is_group_lr:
            return "per-group learning rates"
        if self.dynamic_weight_decay:
            return "a weight-decay schedule"
        if self.is_group and any(self.grad_centralization_flags):
            return "gradient centralisation"
        if self.need_scale:
            return "a loss scale other than 1"
        dtypes = {p.dtype for p in self._parameters}
        if dtypes != {ms.float32}:
            return f"parameters of dtype {', '.join(sorted(str(d) for d in dtypes))} (float32 only)"
        return ""

    def construct(self, gradients: Tuple[Tensor, ...]) -> Tensor:
        lr = self.get_lr()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        # Last layer first: MindSpore schedules the backward pass by the order of this operator's inputs. In forward
        # order the weight gradients waited for the whole chain of input gradients, keeping every layer's input
        # alive meanwhile, which raised res2net50_v1b's training peak at 224 (docs/performance.md).
        args = (lr, self.momentum, self.decays_reversed, self.threads)
        args = args + self._parameters[::-1] + gradients[::-1] + self.moments[::-1]
        return self.fused_update(*args)
