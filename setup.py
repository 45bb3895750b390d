"""Packaging for mindcv: a Res2Net model zoo and training toolkit on MindSpore."""

import os

from setuptools import find_packages, setup

_here = os.path.dirname(os.path.abspath(__file__))


def _version() -> str:
    ns: dict = {}
    with open(os.path.join(_here, "mindcv", "version.py"), encoding="utf-8") as f:
        exec(f.read(), ns)
    return ns["__version__"]


setup(
    name="mindcv",
    version=_version(),
    description="Res2Net model zoo, training and evaluation on MindSpore",
    long_description=open(os.path.join(_here, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["mindcv", "mindcv.*"]),
    # csrc: the fused optimizer kernel, compiled on first use (mindcv/optim/fused.py).
    package_data={"mindcv": ["data/assets/*", "data/*.txt", "data/*.json", "optim/csrc/*.cc"]},
    include_package_data=True,
    python_requires=">=3.9",
    install_requires=[
        # Tested on 2.10.0. 2.9 lacks pieces of the mint/amp API we use; 2.11 is untested.
        "mindspore>=2.10.0,<2.11",
        # MindSpore 2.10 was built against numpy 1.x: under numpy 2 its dataset engine rejects
        # Python sources yielding scalars ("Unable to avoid copy") and PyNative prints ABI banners.
        "numpy>=1.25,<2",
        "pyyaml>=5.4",
        "tqdm>=4.60",
        "pillow>=9.0",
        "safetensors>=0.4",
        "matplotlib>=3.5",
    ],
    extras_require={
        # timm's weights (pretrained=True with a timm_* tag) come from the Hugging Face Hub through huggingface_hub
        # (tested with 2.4.0; mindcv.utils.hub uses its 2.x error classes).
        "hub": ["huggingface_hub>=2.4"],
        # validate.py / infer.py --backend onnxruntime and export.py --check on ONNX files (tested with 1.32).
        "onnx": ["onnxruntime>=1.18"],
        "test": [
            "pytest>=7",
            "huggingface_hub>=2.4",
            # Parity against the reference implementation and ONNX checks. torch/torchvision are the
            # releases that lie on this machine's disk; timm supplies the reference Res2Net.
            "torch==2.14.1",
            "torchvision==0.29.1",
            "timm>=1.0",
            "onnx>=1.16",
            "onnxruntime>=1.18",
            # onnx pulls ml_dtypes; 0.6 requires numpy 2, which MindSpore 2.10 cannot use.
            "ml_dtypes>=0.5.4,<0.6",
        ],
    },
    entry_points={"console_scripts": []},
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
