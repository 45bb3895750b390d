"""Test-session defaults: quiet MindSpore logs, fast CPU convolutions, PyNative mode per test."""

import os

os.environ.setdefault("GLOG_v", "3")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

import pytest  # noqa: E402

import mindspore as ms  # noqa: E402


@pytest.fixture(autouse=True)
def _pynative_cpu():
    """Each test starts in PyNative mode on the CPU; a test that switches to Graph mode is undone."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)
