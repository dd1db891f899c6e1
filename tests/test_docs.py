"""Spec: the README is a front door of at most 200 lines whose pictures exist in the repository; every relative
link in README.md and docs/*.md points to a file that exists; every project module the docs name as
``python -m MODULE`` answers ``--help`` with exit status 0 and a usage line."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 200
MAX_IMAGE_BYTES = 150_000

# Top-level packages of this project; `python -m` names outside them are tools the docs mention.
PROJECT = {"bench", "benchmarks", "data", "launchers", "models", "reports"}
# Not this project's: the standard library's venv, pip, pytest, and MLCommons' compliance checker. They are
# not run here; a module outside both sets fails test_every_named_module_is_classified.
THIRD_PARTY = {"venv", "pip", "pytest", "mlperf_logging.compliance_checker"}

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|<img\s[^>]*src=\"([^\"]+)\"")
MODULE = re.compile(r"\bpython3? -m\s+([A-Za-z_][\w.]*)")


def _prose(text: str) -> str:
    """The Markdown without code blocks and inline code, where a bracket is not a link."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _is_external(target: str) -> bool:
    return target.startswith(("#", "mailto:")) or re.match(r"^[a-z][a-z0-9+.-]*://", target) is not None


def _modules() -> list[str]:
    """Every `python -m NAME` of the pages, code blocks included; placeholders such as benchmarks.NAME left out."""
    names = set()
    for page in PAGES:
        for name in MODULE.findall(page.read_text()):
            name = name.rstrip(".")
            if not any(part.isupper() for part in name.split(".")):
                names.add(name)
    return sorted(names)


def test_readme_is_at_most_200_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_every_image_the_readme_shows_exists_and_is_small():
    images = [a or b for a, b in IMAGE.findall(_prose(README.read_text()))]
    assert images, "the README shows no picture"
    for target in images:
        assert not _is_external(target), f"README.md shows {target}: commit the image and link it relatively"
        path = (README.parent / target.split("#")[0]).resolve()
        assert path.is_file(), f"README.md shows {target}, which does not exist"
        assert ROOT in path.parents, f"README.md shows {target}, outside the repository"
        assert path.stat().st_size < MAX_IMAGE_BYTES, f"{target} is {path.stat().st_size} bytes; shrink it"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_files_that_exist(page):
    broken = []
    for target in LINK.findall(_prose(page.read_text())):
        if _is_external(target):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_the_readme_links_every_docs_page():
    linked = {(README.parent / t.split("#")[0]).resolve() for t in LINK.findall(_prose(README.read_text()))}
    missing = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not missing, f"README.md's map of docs/ lacks {missing}"


def test_every_named_module_is_classified():
    unknown = [m for m in _modules() if m.split(".")[0] not in PROJECT and m not in THIRD_PARTY]
    assert not unknown, f"python -m names neither of this project nor known tools: {unknown}"


@pytest.mark.slow
@pytest.mark.parametrize("module", [m for m in _modules() if m.split(".")[0] in PROJECT])
def test_every_project_module_the_docs_name_answers_help(module):
    proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"python -m {module} --help exited {proc.returncode}: {proc.stderr[-2000:]}"
    assert "usage:" in proc.stdout, f"python -m {module} --help printed no usage line: {proc.stdout[:500]}"
