"""The package is a layered house: a module imports only from layers below its own, or from its own package.

Lowest first: ``errors`` < ``utils`` < {models, data, loss, optim, scheduler} < {config, engine, deploy} < the entry
modules (``mindcv/__init__.py``, ``__main__.py``, ``convert.py``) < scripts, ``benchmarks/`` and ``tools/``. Packages
in one layer do not import each other. Every ``mindcv`` import sits at module level (a function-local one would only
hide a cycle), and optional packages (torch, timm, onnx, onnxruntime, matplotlib) are imported inside the function
that needs them, never at module level. The checks read the source with ``ast``, so they cover modules no test
imports.
"""

import ast
import os
import subprocess
import sys
from typing import Iterator, List, Tuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "mindcv")

LAYERS = {
    "errors": 0,
    "version": 0,
    "_env": 0,
    "utils": 1,
    "models": 2,
    "data": 2,
    "loss": 2,
    "optim": 2,
    "scheduler": 2,
    "config": 3,
    "engine": 3,
    "deploy": 3,
    # entry modules of the package itself
    "__init__": 4,
    "__main__": 4,
    "convert": 4,
}
OPTIONAL = ("torch", "timm", "onnx", "onnxruntime", "matplotlib", "torchvision", "huggingface_hub")


def _modules() -> List[str]:
    out = []
    for folder, _, files in os.walk(PACKAGE):
        out += [os.path.join(folder, f) for f in files if f.endswith(".py")]
    return sorted(out)


def _dotted(path: str) -> str:
    rel = os.path.relpath(path, ROOT)[: -len(".py")].split(os.sep)
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def _unit(dotted: str, is_package_init: bool = False) -> str:
    """The layer unit of a module: its first component below ``mindcv`` (``mindcv.models.layers.x`` -> models)."""
    parts = dotted.split(".")
    if len(parts) == 1:  # mindcv itself
        return "__init__"
    return parts[1]


def _imports(path: str) -> Iterator[Tuple[int, str, bool]]:
    """(line, absolute module name, at module level) of every import in the file."""
    tree = ast.parse(open(path, encoding="utf-8").read(), filename=path)
    dotted = _dotted(path)
    package = dotted if path.endswith("__init__.py") else dotted.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, id(node) in top_level or _in_guard(tree, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield node.lineno, name, id(node) in top_level or _in_guard(tree, node)


def _in_guard(tree: ast.Module, node: ast.AST) -> bool:
    """An import inside a module-level ``try:``/``if`` block still runs at import time."""
    for stmt in tree.body:
        if isinstance(stmt, (ast.Try, ast.If)) and any(child is node for child in ast.walk(stmt)):
            return True
    return False


def test_every_module_has_a_layer():
    units = {_unit(_dotted(path)) for path in _modules()}
    assert units <= set(LAYERS), f"modules outside the layer table: {sorted(units - set(LAYERS))}"


def test_no_upward_or_sibling_import():
    problems = []
    for path in _modules():
        me = _unit(_dotted(path))
        for line, name, _ in _imports(path):
            if name != "mindcv" and not name.startswith("mindcv."):
                continue
            other = _unit(name)
            if other == me:
                continue
            where = f"{os.path.relpath(path, ROOT)}:{line}"
            if LAYERS[other] > LAYERS[me]:
                problems.append(f"{where}: {me} (layer {LAYERS[me]}) imports {name} (layer {LAYERS[other]}): upward")
            elif LAYERS[other] == LAYERS[me] and LAYERS[me] < LAYERS["__init__"]:  # entry modules may share
                problems.append(f"{where}: {me} imports its sibling {name}")
    assert not problems, "\n".join(problems)


def test_mindcv_imports_sit_at_module_level():
    local = [
        f"{os.path.relpath(path, ROOT)}:{line} imports {name} inside a function"
        for path in _modules()
        for line, name, at_module_level in _imports(path)
        if (name == "mindcv" or name.startswith("mindcv.")) and not at_module_level
    ]
    assert not local, "\n".join(local)


def test_optional_packages_are_imported_lazily():
    eager = [
        f"{os.path.relpath(path, ROOT)}:{line} imports {name} at module level"
        for path in _modules()
        for line, name, at_module_level in _imports(path)
        if name.split(".")[0] in OPTIONAL and at_module_level
    ]
    assert not eager, "\n".join(eager)


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The rules above fail on a planted violation (they are not vacuous)."""
    bad = tmp_path / "mindcv" / "utils"
    bad.mkdir(parents=True)
    (bad / "bad.py").write_text("from ..engine import TrainStep\n\n\ndef f():\n    from mindcv.models import x\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", str(tmp_path))
    found = list(_imports(str(bad / "bad.py")))
    assert found == [(1, "mindcv.engine", True), (5, "mindcv.models", False)]
    assert LAYERS[_unit(found[0][1])] > LAYERS["utils"]


@pytest.mark.parametrize("name", ["TrainStep", "EMA", "ema_to_network_names"])
def test_utils_keeps_its_engine_names_without_loading_the_engine(name):
    code = (
        "import sys, mindcv.utils as u\n"
        "assert not any(m.startswith(('mindcv.engine', 'mindcv.config', 'mindcv.deploy')) for m in sys.modules)\n"
        f"obj = getattr(u, {name!r})\n"
        f"import mindcv.engine as e; assert obj is getattr(e, {name!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=dict(os.environ, GLOG_v="3"))
