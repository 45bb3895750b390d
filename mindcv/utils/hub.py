"""Files from the Hugging Face Hub, through ``huggingface_hub`` (an optional package: ``pip install "mindcv[hub]"``).

The library does the transfer and keeps its cache (``$HF_HOME/hub``, or ``$HF_HUB_CACHE``): its lock against
parallel downloads of one file, the atomic move into place, its retries that resume an interrupted transfer with a
Range request, its size check, ``HF_ENDPOINT`` (a mirror) and ``HF_HUB_OFFLINE=1`` (cache only), all as it
documents them. On top of that, a file stored with Git LFS is checked against the SHA-256 the Hub announced for it
(its ETag, which the cache uses as the blob's name): huggingface_hub checks only the length, and a weight file
that is the right size but wrong is otherwise loaded.
"""

import os
import re
from typing import Any

from ..errors import DownloadError
from .download import hash_file
from .fs import unlink_quiet

__all__ = ["hf_hub_file", "hf_hub_cache_dir", "verify_hub_file"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_INSTALL = 'pip install "mindcv[hub]"'


def _hub() -> Any:
    try:
        import huggingface_hub
        import huggingface_hub.constants  # noqa: F401 (submodules: the package imports its names lazily)
        import huggingface_hub.errors  # noqa: F401
    except ImportError:
        raise DownloadError(
            f"timm's weights are downloaded with huggingface_hub, which is not installed: {_INSTALL}, or pass "
            "--ckpt_path with weights converted by python -m mindcv.convert"
        ) from None
    return huggingface_hub


def hf_hub_cache_dir() -> str:
    """The Hub cache folder huggingface_hub uses now (``HF_HUB_CACHE``, default ``$HF_HOME/hub``)."""
    return str(_hub().constants.HF_HUB_CACHE)


def _where(repo_id: str, filename: str, endpoint: str) -> str:
    """Where a user can put the file by hand: the library's own command fills the cache in its layout."""
    folder = os.path.join(hf_hub_cache_dir(), "models--" + repo_id.replace("/", "--"))
    return (
        f"fetch it where the Hub is reachable with `hf download {repo_id} {filename}` and copy {folder} (the "
        f"cache of {endpoint}/{repo_id}/resolve/main/{filename}) to the same path here, or pass --ckpt_path"
    )


def hf_hub_file(repo_id: str, filename: str, verify: bool = True) -> str:
    """Download (or take from the Hub cache) ``filename`` of model repository ``repo_id``; checked, then returned.

    Args:
        repo_id: e.g. ``"timm/res2net50_26w_4s.in1k"``.
        filename: e.g. ``"model.safetensors"``.
        verify: check the SHA-256 now (:func:`verify_hub_file`); False for a caller that checks it only when it
            reads the file (a cached conversion of it may make reading unnecessary).

    Returns:
        The path of the file in the Hub cache (a snapshot entry pointing to its blob).

    Raises:
        DownloadError: huggingface_hub is missing; the file is neither cached nor downloadable (offline, Hub
            unreachable, not found), in one line naming the file and where to put it; or the downloaded file
            fails its SHA-256 check (it is deleted from the cache, so the next call downloads it again).
    """
    hub = _hub()
    errors = hub.errors
    endpoint = hub.constants.ENDPOINT
    what = f"{filename} of {repo_id}"
    try:
        path = hub.hf_hub_download(repo_id, filename)
    except errors.LocalEntryNotFoundError as e:  # offline (HF_HUB_OFFLINE) or unreachable, and not in the cache
        why = "HF_HUB_OFFLINE is set" if hub.constants.HF_HUB_OFFLINE else f"{endpoint} could not be reached"
        raise DownloadError(f"{what} is not in the Hub cache and {why}; {_where(repo_id, filename, endpoint)}") from e
    except (errors.RepositoryNotFoundError, errors.RemoteEntryNotFoundError, errors.RevisionNotFoundError) as e:
        raise DownloadError(f"{what} is not on {endpoint} ({type(e).__name__}); check HF_ENDPOINT") from None
    except errors.HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", "?")
        raise DownloadError(f"downloading {what} from {endpoint} failed with HTTP {status}; try again later") from None
    except OSError as e:  # e.g. huggingface_hub's "Consistency check failed" (size), a full disk
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DownloadError(f"downloading {what} from {endpoint} failed: {first}; run again to retry") from None
    if verify:
        verify_hub_file(path, what)
    return path


def verify_hub_file(path: str, what: str = "") -> str:
    """Check a Hub cache file stored with Git LFS against the SHA-256 its blob is named by; returns the digest.

    Files not named by a SHA-256 (small files kept in git, named by their git hash) pass unchecked.

    Raises:
        DownloadError: The content differs; the snapshot entry and the blob are deleted so that the next
            download fetches the file anew.
    """
    blob = os.path.realpath(path)
    expected = os.path.basename(blob)
    if not _SHA256.match(expected):
        return ""
    actual = hash_file(blob)
    if actual != expected:
        unlink_quiet(path)  # the snapshot entry, then the blob
        unlink_quiet(blob)
        raise DownloadError(
            f"{what or path} failed its SHA-256 check (expected {expected[:12]}..., got {actual[:12]}...): the "
            "download was corrupted and has been deleted from the Hub cache; run again to download it anew"
        )
    return actual
