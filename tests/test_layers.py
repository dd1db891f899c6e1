"""Spec: layers point only down (README, 'Layout'). data/ and models/ are the bottom (they import neither each
other's upper neighbours nor anything above), bench/ the middle, reports/, launchers/ and benchmarks/ the top;
tests/ and scripts/ may import anything. Every import of every module is read, those inside functions too, and
one that points up fails naming the file and line. A test of the test checks a made-up module that imports up."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEVEL = {"data": 0, "models": 0, "bench": 1, "reports": 2, "launchers": 2, "benchmarks": 2}


def upward_imports(path: Path, package: str) -> list[str]:
    """``file:line: P/ imports X`` for each import in ``path`` (a module of ``package``), at any depth, of a
    project package in a higher layer than ``package``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in LEVEL and LEVEL[top] > LEVEL[package]:
                found.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{node.lineno}: "
                             f"{package}/ imports {name}")
    return found


def test_no_module_imports_a_higher_layer():
    bad = []
    for package in LEVEL:
        for path in sorted((ROOT / package).rglob("*.py")):
            bad += upward_imports(path, package)
    assert not bad, "imports that point up:\n" + "\n".join(bad)


@pytest.mark.parametrize("package,source,ok", [
    ("data", "import numpy\nfrom data.errors import fail\n", True),
    ("data", "def f():\n    from bench.runner import config\n", False),  # inside a function: still read
    ("models", "import reports.tables\n", False),
    ("bench", "from reports import cnn_vs_cuts as figs\n", False),
    ("bench", "import models\nfrom data.base import DataError\n", True),
    ("reports", "from bench import evaluate\n", True),
])
def test_the_layer_check_fails_on_a_made_up_module_that_imports_up(tmp_path, package, source, ok):
    module = tmp_path / "made_up.py"
    module.write_text(source)
    found = upward_imports(module, package)
    assert (found == []) is ok, found
    if not ok:
        assert found[0].startswith(f"{module}:") and "imports" in found[0]
