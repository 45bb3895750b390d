"""What every command-line script shares: one-line errors, the device context, quiet interpreter exit.

``train.py``, ``validate.py`` (and the export/inference scripts) end with ``sys.exit(main())`` where
``main(argv=None)`` returns ``run_cli(run, argv, description)``: the configuration is parsed, ``run``
is called with it, and any :class:`~mindcv.utils.errors.MindCVError` (bad input: a wrong option, a
missing file, an unreachable download...) becomes one line ``error: <problem and fix>`` on stderr
and exit status 2, with the traceback only under ``--debug``. Anything else is a bug and keeps its
traceback.

Scripts should set ``GLOG_v`` before importing mindcv (MindSpore reads it when it loads); see
:func:`quiet_mindspore_env`.
"""

import argparse
import contextlib
import logging
import os
import sys
import traceback
from argparse import Namespace
from typing import Callable, Iterator, Optional, Sequence

from mindspore import nn

from .errors import ConfigError, MindCVError
from .logger import close_logger

__all__ = [
    "run_cli",
    "run_main",
    "ArgumentParser",
    "setup_context",
    "configure_cpu_memory_pool",
    "quiet_mindspore_env",
    "EXIT_USAGE",
]

#: Exit status of a user error (the argparse convention).
EXIT_USAGE = 2

_logger = logging.getLogger("mindcv")


def _patch_cell_del() -> None:
    """Silence ``Cell.__del__`` errors at interpreter teardown.

    Cells that outlive ``main()`` (captured by a compiled function, for instance) are destroyed after
    MindSpore's module globals are set to None, and each one prints ``AttributeError: 'NoneType'
    object has no attribute 'total_instance_count'`` (hundreds of lines for a ResNet). Swallowing
    exceptions in ``__del__`` is what the interpreter would do anyway, minus the noise. Ending the
    process with ``os._exit`` would also hide them, but under msrun a worker that skips MindSpore's
    finalisation is reported as failed.
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


_patch_cell_del()


def quiet_mindspore_env() -> None:
    """Default ``GLOG_v`` to 3 (errors only) unless the user set it; call before importing mindspore."""
    os.environ.setdefault("GLOG_v", "3")


def _wants_debug(argv: Sequence[str]) -> bool:
    """``--debug`` (or ``debug=true``) on the command line, found even when parsing itself fails."""
    for i, token in enumerate(argv):
        key, _, value = token.lstrip("-").partition("=")
        if key != "debug" or (token.startswith("-") and not token.startswith("--")):
            continue
        if not value and i + 1 < len(argv) and not argv[i + 1].startswith("-") and "=" not in argv[i + 1]:
            value = argv[i + 1]
        return value.lower() not in ("false", "0", "no", "n", "off")
    return False


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


class ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`ConfigError` (one line) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{message} (see --help)")


def run_main(
    main_fn: Callable[[Sequence[str]], Optional[int]],
    argv: Optional[Sequence[str]] = None,
    debug_requested: Optional[Callable[[], bool]] = None,
) -> int:
    """Call ``main_fn(argv)``, turning user errors into one ``error:`` line and status 2.

    Args:
        main_fn: The script's body; it parses ``argv`` itself (with :class:`ArgumentParser`) and returns
            an exit status or None.
        argv: Command-line tokens without the program name; None reads ``sys.argv[1:]``.
        debug_requested: Asked after a failure whether tracebacks were requested some other way than
            ``--debug`` on the command line (e.g. ``debug: true`` in a YAML file).

    Returns:
        ``main_fn``'s status (None counts as 0), :data:`EXIT_USAGE` after a user error, 130 after Ctrl-C.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _wants_debug(argv)
    try:
        return int(main_fn(argv) or 0)
    except MindCVError as e:
        if debug or (debug_requested is not None and debug_requested()):
            traceback.print_exc()
        message = _one_line(e)
        _log_to_files(f"error: {message}")  # the reason stays in train.log too
        print(f"error: {message}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _log_to_files("interrupted")
        print(
            "error: interrupted; the last completed checkpoint is kept (continue with --resume auto)", file=sys.stderr
        )
        return 130
    finally:
        close_logger()  # a later run in the same process (tests, notebooks) starts clean


def run_cli(
    run: Callable[[Namespace], None],
    argv: Optional[Sequence[str]] = None,
    description: str = "mindcv",
) -> int:
    """Parse the train/validate configuration and call ``run(cfg)`` under :func:`run_main`'s error handling.

    Args:
        run: The script's body, given the parsed configuration.
        argv: Command-line tokens without the program name; None reads ``sys.argv[1:]``.
        description: Text at the top of ``--help``.

    Returns:
        0 on success, :data:`EXIT_USAGE` after a user error, 130 after Ctrl-C.
    """
    from .config import parse_args  # late: keeps this module importable without the data/optim packages

    state = {"debug": False}

    def main_fn(tokens: Sequence[str]) -> int:
        cfg = parse_args(tokens, description)
        state["debug"] = bool(cfg.debug)  # also set by `debug: true` in the YAML file
        run(cfg)
        return 0

    return run_main(main_fn, argv, debug_requested=lambda: state["debug"])


def _log_to_files(text: str) -> None:
    record = _logger.makeRecord(_logger.name, logging.ERROR, __file__, 0, "%s", (text,), None)
    for handler in _logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@contextlib.contextmanager
def _mindspore_log_muted() -> Iterator[None]:
    """Silence MindSpore's Python logger for a block whose failure we report ourselves in one line."""
    try:
        from mindspore import log as ms_log

        ms_logger = ms_log._get_logger()  # private, but the only handle on MindSpore's own logger
    except Exception:  # noqa: BLE001 - a MindSpore without it: just show its lines
        yield
        return
    level = ms_logger.level
    ms_logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        ms_logger.setLevel(level)


# MindSpore's CPU memory pool starts with a 2 GB block and grows by 2 GB. Freed blocks stay mapped, so the
# process's resident memory is set by how the step's tensors fall into those blocks: a res2net50 training step at
# 224x224, batch 32, peaked at 5.60 GiB RSS with the defaults and at 5.10 GiB with a 1 GB first block growing by
# 0.5 GB (res2net50_v1b 5.69 -> 5.40 GiB), at the same speed. (A 0.5 GB first block gave 5.85 GiB: the value is
# measured, not derived.)
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
    import mindspore as ms

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


def setup_context(mode: int, device_target: str, amp_level: str = "O0") -> None:
    """Select Graph/PyNative mode and the device, with one-line errors for an unavailable device.

    Args:
        mode: 0 Graph, 1 PyNative.
        device_target: ``"CPU"``, ``"GPU"`` or ``"Ascend"``.
        amp_level: Checked against the device: float16 AMP on the CPU runs but is slower than
            float32 (and bfloat16 convolutions are unsupported there), so it is allowed with a warning.

    Raises:
        ConfigError: The MindSpore installation cannot run on ``device_target``.
    """
    import mindspore as ms

    ms.set_context(mode=ms.GRAPH_MODE if mode == 0 else ms.PYNATIVE_MODE)
    try:
        with _mindspore_log_muted():  # its version probes print several lines for a missing device
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
