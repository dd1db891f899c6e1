"""Spec: no function in bench/ is longer than 60 lines and none in benchmarks/ longer than 80, so each reads
on one screen. A function's length runs from its ``def`` line to its last line (decorators do not count);
methods and nested functions count as functions of their own. Read with ``ast``; nothing is imported or run."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMITS = {"bench": 60, "benchmarks": 80}


def too_long(folder: Path, limit: int, base: Path = ROOT) -> list[str]:
    """``file:line function N lines`` (file relative to ``base``) for every function of the Python files
    under ``folder`` longer than ``limit`` lines."""
    out = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    out.append(f"{path.relative_to(base)}:{node.lineno} {node.name} {lines} lines")
    return out


@pytest.mark.parametrize("folder", LIMITS)
def test_no_function_is_longer_than_its_folders_limit(folder):
    assert (ROOT / folder).is_dir()
    assert too_long(ROOT / folder, LIMITS[folder]) == [], f"over {LIMITS[folder]} lines"


def function(name: str, lines: int, indent: str = "") -> str:
    """The source of a function ``name`` of exactly ``lines`` lines, ``def`` line included."""
    body = [f"{indent}    x{i} = {i}" for i in range(lines - 2)]
    return "\n".join([f"{indent}def {name}():", *body, f"{indent}    return 0"]) + "\n"


def test_the_check_reports_a_61_line_function_and_spares_a_60_line_one(tmp_path):
    (tmp_path / "pkg").mkdir()
    source = ("import functools\n\n\n" + function("fits", 60) + "\n\n@functools.cache\n" + function("long", 61)
              + "\n\nclass C:\n" + function("method", 61, indent="    "))
    (tmp_path / "pkg" / "made_up.py").write_text(source)
    long_line = source.splitlines().index("def long():") + 1
    method_line = source.splitlines().index("    def method():") + 1
    assert too_long(tmp_path, 60, base=tmp_path) == [f"pkg/made_up.py:{long_line} long 61 lines",
                                                     f"pkg/made_up.py:{method_line} method 61 lines"]
    assert too_long(tmp_path, 61, base=tmp_path) == []


def test_a_nested_function_counts_on_its_own(tmp_path):
    inner = function("inner", 61, indent="    ")
    (tmp_path / "nested.py").write_text("def outer():\n" + inner + "    return inner\n")
    assert too_long(tmp_path, 61, base=tmp_path) == ["nested.py:1 outer 63 lines"]
    assert too_long(tmp_path, 60, base=tmp_path) == ["nested.py:1 outer 63 lines", "nested.py:2 inner 61 lines"]
