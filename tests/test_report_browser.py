"""Spec: the report's `index.html` in a real browser: it loads, every figure shows (each image decoded, not a
broken link), and the summary (the answer) stands above the first figure on the laid-out page.

The browser is Debian's `chromium`, headless; the set-up installs it with apt when it is missing (as root on
Debian) and skips with the reason otherwise. The check runs in a copy of the page with a script added at its
end, which writes what the browser laid out into the DOM that `--dump-dom` prints; the report itself has no
JavaScript.
"""
import contextlib
import html
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # installs and starts a browser

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "tests" / "records"
BROWSERS = ("chromium", "chromium-browser")
PROBE = """<script>
window.addEventListener("load", () => {
  const top = (el) => el ? el.getBoundingClientRect().top + window.scrollY : null;
  const images = [...document.querySelectorAll("figure img")];
  const summary = document.getElementById("summary");
  const result = {
    figures: images.map((img) => ({src: img.getAttribute("src"), decoded: img.complete && img.naturalWidth > 0})),
    summary: top(summary),
    summaryTable: top(summary && summary.parentElement.querySelector("h2#summary ~ table")),
    firstFigure: top(images[0]),
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>
"""


def _installed() -> str | None:
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless-capable chromium, installed from Debian's packages when missing."""
    found = _installed()
    if found:
        return found
    if not Path("/etc/debian_version").exists() or shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and this is not a Debian system with apt-get to install it")
    if os.geteuid() != 0:
        pytest.skip("chromium is not installed; installing Debian's package needs root (apt-get install chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
        except subprocess.TimeoutExpired:
            pytest.skip(f"installing chromium took too long ({' '.join(cmd)})")
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            pytest.skip(f"could not install chromium ({' '.join(cmd)}: {last})")
    return _installed() or pytest.skip("apt-get installed chromium but no chromium command is on PATH")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report with every kind of figure: scaling, projected points, a GPU baseline, CPU use."""
    from reports import build

    out = tmp_path_factory.mktemp("report")
    paths = [RECORDS / n for n in ("knl.jsonl", "skx.jsonl", "gpu.jsonl", "cpu.jsonl")]
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert build.main([*map(str, paths), "--out", str(out)]) == 0
    figures = re.findall(r"^!\[(\w+)\]\(\1\.png\)$", (out / "report.md").read_text(), flags=re.MULTILINE)
    return out, figures


def test_the_page_loads_with_every_figure_and_the_summary_first(chromium, report):
    out, figures = report
    assert len(figures) == 8 and "cpu_use" in figures  # the seven of the report and CPU use
    page = (out / "index.html").read_text()
    assert "<script" not in page
    probe = out / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--allow-file-access-from-files", "--virtual-time-budget=20000", "--window-size=1280,1024",
                           "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, flags=re.DOTALL)
    assert proc.returncode == 0 and found, f"chromium printed no probe result: {proc.stderr[-2000:]}"
    laid_out = json.loads(html.unescape(found.group(1)))
    assert [f["src"] for f in laid_out["figures"]] == [f"{name}.png" for name in figures]
    assert all(f["decoded"] for f in laid_out["figures"]), laid_out["figures"]
    assert laid_out["summary"] is not None and laid_out["summaryTable"] is not None
    assert laid_out["summary"] < laid_out["summaryTable"] < laid_out["firstFigure"], laid_out
