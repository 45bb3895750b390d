"""Where downloaded datasets live: one folder, shared by every dataset that can download itself.

Upstream MindCV names it ``get_dataset_download_root()`` (``~/.mindspore/datasets`` there); here it is the
``datasets`` folder of the mindcv cache (:func:`mindcv.utils.download.get_cache_dir`), so that one
environment variable, ``MINDCV_HOME``, moves checkpoints and datasets together.
"""

from ..utils.download import get_cache_dir

__all__ = ["get_dataset_download_root"]

_SUBDIR = "datasets"


def get_dataset_download_root() -> str:
    """Return (and create) the folder that downloaded datasets go to by default.

    Returns:
        ``$MINDCV_HOME/datasets``, or ``~/.cache/mindcv/datasets`` when ``MINDCV_HOME`` is not set.

    Raises:
        DownloadError: The folder cannot be created.
    """
    return get_cache_dir(_SUBDIR)
