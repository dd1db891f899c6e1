"""Spec: rewriting the report's analysis and tables (onto pandas) changes none of its numbers, tables or figures.

`tests/records/expected/<set>/` holds what `reports.build` wrote for two fixed record sets before the rewrite
(made by the code of commit 0caccd0): the CSV tables (compared byte for byte), the markdown tables (compared
cell by cell, so column padding may differ), the report's sections, the warnings printed, and the figures
(their names in page order, and the SHA-256 of each SVG, compared when matplotlib and seaborn are the versions
that drew them). Regenerate them only when a table or figure is meant to change, and say why in the commit.

* `fixtures`: tests/records/ knl, skx, gpu and malformed (projected points, a GPU crossover, broken lines).
* `reference`: knl and skx against the H100 reference records (two GPU baselines of 64 and 224 px, the ROC
  figure and the physics table, configuration names that sort as strings).
"""
import contextlib
import hashlib
import io
import json
import re
from pathlib import Path

import matplotlib
import pytest
import seaborn

pytestmark = pytest.mark.slow  # each set is a whole report build, seconds of plotting

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ROOT / "tests" / "records" / "expected"
SETS = {
    "fixtures": ["tests/records/knl.jsonl", "tests/records/skx.jsonl", "tests/records/gpu.jsonl",
                 "tests/records/malformed.jsonl"],
    "reference": ["tests/records/knl.jsonl", "tests/records/skx.jsonl", "reports/reference/h100_records.jsonl",
                  "reports/reference/h100_records_eager.jsonl"],
}


@pytest.fixture(scope="module", params=sorted(SETS))
def built(request, tmp_path_factory, monkeypatch_module):
    from reports import build

    monkeypatch_module.chdir(ROOT)  # record paths as the expected files name them
    out = tmp_path_factory.mktemp(request.param)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert build.main([*SETS[request.param], "--out", str(out)]) == 0
    return EXPECTED / request.param, out, err.getvalue()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def cells(markdown: str) -> list[list[str]]:
    """The rows of every markdown table in ``markdown``, each a list of stripped cells (rules left out)."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip()):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def sections(report: str) -> dict[str, str]:
    """``{heading: body}`` of the report's ``## `` sections."""
    parts = re.split(r"^## (.+)$", report, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_csv_tables_are_byte_for_byte_the_same(built):
    expected, out, _ = built
    names = sorted(p.name for p in expected.glob("*.csv"))
    assert names == sorted(p.name for p in out.glob("*.csv"))
    for name in names:
        assert (out / name).read_bytes() == (expected / name).read_bytes(), name


def test_markdown_tables_hold_the_same_cells(built):
    expected, out, _ = built
    for path in expected.glob("*.md"):
        if path.name != "report.md":
            assert cells((out / path.name).read_text()) == cells(path.read_text()), path.name


def test_every_section_of_the_report_says_the_same(built):
    expected, out, _ = built
    before, after = sections((expected / "report.md").read_text()), sections((out / "report.md").read_text())
    for heading, body in before.items():
        assert heading in after, heading
        if heading == "Warnings":  # every warning given before is still given (a CPU warning may join them)
            old = [line for line in body.splitlines() if line.startswith("- ")]
            assert set(old) <= set(after[heading].splitlines()), heading
            continue
        assert cells(after[heading]) == cells(body), heading
        prose = [line for line in body.splitlines() if line and not line.startswith("|")]
        assert [line for line in after[heading].splitlines() if line and not line.startswith("|")] == prose


def test_the_same_warnings_are_printed(built):
    expected, _, err = built
    printed = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert printed == (expected / "warnings.txt").read_text().splitlines()


def test_the_same_figures_in_the_same_order_drawn_the_same(built):
    expected, out, _ = built
    figures = json.loads((expected / "figures.json").read_text())
    html = (out / "index.html").read_text()
    assert re.findall(r'<img src="([a-z_]+)\.png"', html) == figures["figures"]
    if (matplotlib.__version__, seaborn.__version__) != (figures["matplotlib"], figures["seaborn"]):
        pytest.skip(f"SVGs were drawn by matplotlib {figures['matplotlib']} and seaborn {figures['seaborn']}; "
                    f"this is {matplotlib.__version__} and {seaborn.__version__}: only names and order compared")
    for name, digest in figures["svg_sha256"].items():
        assert hashlib.sha256((out / f"{name}.svg").read_bytes()).hexdigest() == digest, name
