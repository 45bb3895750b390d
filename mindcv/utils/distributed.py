"""Data-parallel set-up under MindSpore's launcher ``msrun`` (or a rank table on Ascend).

Launch (CPU here, 2 processes; use 8 on an 8-device GPU/Ascend server)::

    msrun --worker_num=2 --local_worker_num=2 --master_port=8118 --join=True --log_dir=msrun_log \\
        train.py -c CONFIG.yaml --distribute

msrun starts a scheduler and the workers and sets ``MS_WORKER_NUM``, ``MS_ROLE``, ``RANK_ID``,
``MS_SCHED_HOST``/``MS_SCHED_PORT`` for each; :func:`init_distributed` then calls
``mindspore.communication.init()`` (the ``mccl`` backend on CPU, NCCL on GPU, HCCL on Ascend).
"""

from typing import Tuple

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from ..errors import ConfigError

__all__ = ["init_distributed", "launched_by_launcher", "all_reduce_sum", "LAUNCH_HINT"]

LAUNCH_HINT = (
    "msrun --worker_num=N --local_worker_num=N --master_port=8118 --join=True --log_dir=msrun_log "
    "train.py --distribute ..."
)
# Variables set by msrun (MS_*), by a rank-table launch on Ascend (RANK_TABLE_FILE) or by mpirun (OMPI_*).
_LAUNCHER_ENV = ("MS_WORKER_NUM", "MS_ROLE", "RANK_TABLE_FILE", "OMPI_COMM_WORLD_SIZE")


def launched_by_launcher() -> bool:
    """True when a distributed launcher started this process."""
    import os

    return any(os.environ.get(k) for k in _LAUNCHER_ENV)


def init_distributed(distribute: bool) -> Tuple[int, int]:
    """Initialise collective communication and data-parallel mode when ``distribute`` is set.

    Args:
        distribute: The ``--distribute`` option.

    Returns:
        ``(rank, group_size)``; ``(0, 1)`` without ``distribute``.

    Raises:
        ConfigError: ``distribute`` without a launcher (the message shows the msrun command).
    """
    if not distribute:
        return 0, 1
    if not launched_by_launcher():
        raise ConfigError(f"--distribute needs a launcher that starts one process per device: {LAUNCH_HINT}")
    from mindspore.communication import get_group_size, get_rank, init

    init()
    rank, group_size = get_rank(), get_group_size()
    ms.reset_auto_parallel_context()
    ms.set_auto_parallel_context(
        parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=group_size
    )
    return rank, group_size


class _AllReduceSum(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.reduce = ops.AllReduce()

    def construct(self, x: Tensor) -> Tensor:
        return self.reduce(x)


def all_reduce_sum(values: np.ndarray) -> np.ndarray:
    """Sum a small float array over all ranks (every rank must call it); float64 in, float64 out."""
    out = _AllReduceSum()(Tensor(np.asarray(values, dtype=np.float32)))
    return out.asnumpy().astype(np.float64)
