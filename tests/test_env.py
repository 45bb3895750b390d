"""The oneDNN ISA default is applied at import and never overrides the user's value."""

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
