"""Process-level defaults: the oneDNN ISA cap at import (never overriding the user) and the CPU memory pool."""

import os
import subprocess
import sys

import pytest

PROBE = "import os, mindcv; print(os.environ.get('ONEDNN_MAX_CPU_ISA'))"


@pytest.mark.parametrize("user_value,expected", [(None, "AVX2"), ("AVX512_CORE", "AVX512_CORE")])
def test_onednn_isa_default(user_value, expected):
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    if user_value:
        env["ONEDNN_MAX_CPU_ISA"] = user_value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == expected


def test_cli_model_table():
    out = subprocess.run(
        [sys.executable, "-m", "mindcv", "--models", "res2next50", "--image_size", "32"],
        capture_output=True,
        text=True,
        env=dict(os.environ, GLOG_v="3"),
        check=True,
    )
    assert "| res2next50 | 24,671,464 | (2, 1000) |" in out.stdout


POOL_PROBE = """
import mindspore as ms
from mindcv.utils.runtime import setup_context
from mindcv.errors import ConfigError
try:
    setup_context(0, "CPU")
except ConfigError as e:
    print("ConfigError:", e)
    raise SystemExit(0)
try:
    ms.runtime.set_memory(init_size="3GB")
    print("pool left to the user")
except RuntimeError:
    print("pool configured")
"""


@pytest.mark.parametrize(
    "value,expected",
    [
        (None, "pool configured"),  # default 1GB,0.5GB
        ("2GB,1GB", "pool configured"),
        ("default", "pool left to the user"),
        ("1XB,0.5GB", "ConfigError: MINDCV_CPU_MEMORY_POOL='1XB,0.5GB' is not '<first block>,<growth>'"),
    ],
)
def test_cpu_memory_pool_setting(value, expected):
    # MindSpore accepts set_memory once per process, so each case runs in its own interpreter.
    env = {k: v for k, v in os.environ.items() if k != "MINDCV_CPU_MEMORY_POOL"}
    env["GLOG_v"] = "3"
    if value is not None:
        env["MINDCV_CPU_MEMORY_POOL"] = value
    out = subprocess.run([sys.executable, "-c", POOL_PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1].startswith(expected), out.stdout


def test_cpu_memory_pool_keeps_an_earlier_setting():
    code = (
        "import mindspore as ms; ms.runtime.set_memory(init_size='3GB');"
        "from mindcv.utils.runtime import configure_cpu_memory_pool; print(configure_cpu_memory_pool())"
    )
    env = dict(os.environ, GLOG_v="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_setup_context_after_kernels_ran_on_the_same_device():
    # A second train/validate main() in one process: MindSpore refuses set_device once a kernel ran, even for the
    # device in use; setup_context must accept that, and still refuse a device this build cannot run.
    code = (
        "import numpy as np, mindspore as ms\n"
        "from mindcv.utils.runtime import setup_context\n"
        "from mindcv.errors import ConfigError\n"
        "ms.Tensor(np.ones(3)).sum().asnumpy()\n"
        "setup_context(0, 'CPU')\n"
        "try:\n"
        "    setup_context(0, 'GPU')\n"
        "except ConfigError as e:\n"
        "    print('refused:', e)\n"
    )
    env = dict(os.environ, GLOG_v="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1].startswith("refused: --device_target GPU is not usable here")
