"""Process runtime setup shared by every entry point: mode and device, the CPU memory pool, a quiet exit.

Scripts default ``GLOG_v`` to 3 before importing mindcv (MindSpore reads it when it loads), then call
:func:`setup_context` once their options are parsed.
"""

import glob
import logging
import os

import mindspore as ms
from mindspore import nn

from ..errors import ConfigError
from .logger import mindspore_log_muted

__all__ = [
    "detect_device_target",
    "setup_context",
    "configure_cpu_memory_pool",
    "quiet_cell_teardown",
    "CPU_MEMORY_POOL_DEFAULT",
]

_logger = logging.getLogger("mindcv")


def quiet_cell_teardown() -> None:
    """Silence ``Cell.__del__`` errors at interpreter teardown.

    Cells that outlive ``main()`` (captured by a compiled function, for instance) are destroyed after
    MindSpore's module globals are set to None, and each one prints ``AttributeError: 'NoneType'
    object has no attribute 'total_instance_count'`` (hundreds of lines for a ResNet). Swallowing
    exceptions in ``__del__`` is what the interpreter would do anyway, minus the noise. Ending the
    process with ``os._exit`` would also hide them, but under msrun a worker that skips MindSpore's
    finalisation is reported as failed. Entry points call it (:func:`mindcv.utils.cli.run_main` does); importing
    mindcv changes nothing. Calling it again is a no-op.
    """
    original = nn.Cell.__del__
    if getattr(original, "_mindcv_quiet", False):
        return

    def quiet_del(self: nn.Cell) -> None:
        try:
            original(self)
        except Exception:  # noqa: BLE001 - teardown only; there is nothing left to report to
            pass

    quiet_del._mindcv_quiet = True  # type: ignore[attr-defined]
    nn.Cell.__del__ = quiet_del


# MindSpore's CPU memory pool starts with a 2 GB block and grows by 2 GB. Freed blocks stay mapped, so the
# process's resident memory is set by how the step's tensors fall into those blocks. A 1 GB first block growing by
# 0.5 GB gave a lower training peak at 224x224 than the defaults at the same speed (figures: docs/performance.md); a
# smaller first block was worse, so the value is measured, not derived.
CPU_MEMORY_POOL_DEFAULT = "1GB,0.5GB"


def configure_cpu_memory_pool() -> bool:
    """Size MindSpore's CPU memory pool from ``MINDCV_CPU_MEMORY_POOL`` ("<first block>,<growth>", default
    ``1GB,0.5GB``; ``default`` keeps MindSpore's own 2GB,2GB). MindSpore accepts this once per process, before
    the pool is used; if it was already set (by the user or an earlier call) that setting stays.

    Returns:
        True when this call set the pool.

    Raises:
        ConfigError: the variable is not two sizes like ``1GB,0.5GB``.
    """
    spec = os.environ.get("MINDCV_CPU_MEMORY_POOL", CPU_MEMORY_POOL_DEFAULT).strip()
    if spec.lower() == "default":
        return False
    first, _, growth = (part.strip() for part in spec.partition(","))
    try:
        ms.runtime.set_memory(init_size=first, increase_size=growth or first)
    except ValueError as e:
        raise ConfigError(
            f"MINDCV_CPU_MEMORY_POOL='{spec}' is not '<first block>,<growth>' sizes such as '1GB,0.5GB' "
            f"({str(e).splitlines()[0][:120]}); fix or unset it"
        ) from None
    except RuntimeError:  # "can not be set repeatedly": someone set it first; keep theirs
        return False
    return True


def detect_device_target() -> str:
    """The device this machine has: ``"Ascend"`` when an NPU device file exists, then ``"GPU"`` for an NVIDIA one,
    else ``"CPU"``. Device files are checked instead of asking MindSpore, whose plugin probes print several lines
    for every missing backend; a device MindSpore then cannot use gets :func:`setup_context`'s one-line error."""
    if glob.glob("/dev/davinci[0-9]*"):
        return "Ascend"
    if os.path.exists("/dev/nvidiactl") and glob.glob("/dev/nvidia[0-9]*"):
        return "GPU"
    return "CPU"


def setup_context(mode: int, device_target: str, amp_level: str = "O0") -> None:
    """Select Graph/PyNative mode and the device, with one-line errors for an unavailable device.

    Args:
        mode: 0 Graph, 1 PyNative.
        device_target: ``"CPU"``, ``"GPU"`` or ``"Ascend"``; None: :func:`detect_device_target`.
        amp_level: Checked against the device: float16 AMP on the CPU runs but is slower than
            float32 (and bfloat16 convolutions are unsupported there), so it is allowed with a warning.

    Raises:
        ConfigError: The MindSpore installation cannot run on ``device_target``.
    """
    ms.set_context(mode=ms.GRAPH_MODE if mode == 0 else ms.PYNATIVE_MODE)
    device_target = device_target or detect_device_target()
    try:
        with mindspore_log_muted():  # its version probes print several lines for a missing device
            ms.set_device(device_target)
    except (RuntimeError, ValueError) as e:
        # MindSpore refuses set_device once a kernel has run in this process (a second train/validate main() in a
        # notebook or a test session), even for the device already in use: that case is fine.
        if not (isinstance(e, RuntimeError) and ms.get_context("device_target") == device_target):
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(
                f"--device_target {device_target} is not usable here ({reason[:160]}); install the MindSpore build "
                "for that device or use --device_target CPU"
            ) from None
    if device_target == "CPU":
        configure_cpu_memory_pool()
    if device_target == "CPU" and amp_level != "O0":
        _logger.warning(
            "amp_level %s on CPU: float16 runs slower than float32 there; --amp_level O0 is the CPU default", amp_level
        )
