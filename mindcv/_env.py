"""Process-level defaults that must be in place before MindSpore runs its first kernel.

Imported first by ``mindcv/__init__.py``; it must not import mindspore itself.
"""

import os

__all__ = ["apply_env_defaults", "ONEDNN_ISA_DEFAULT"]

# On AVX-512/AMX CPUs the oneDNN bundled with MindSpore 2.10 picks a reference-loop kernel for
# NCHW fp32 3x3 convolutions, far slower (measured: docs/performance.md). Capping the ISA at AVX2
# makes it pick the gemm-based kernel. oneDNN reads the variable when it creates its first
# primitive, so setting it any time before the first convolution is enough. Only the CPU backend
# uses oneDNN; on GPU/Ascend the variable is inert. A value the user set is never overridden.
ONEDNN_ISA_DEFAULT = "AVX2"


def apply_env_defaults() -> None:
    """Set CPU performance defaults without overriding anything the user exported."""
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", ONEDNN_ISA_DEFAULT)
