"""The HTML report as a reader sees it: rendered by headless Chromium (skipped where
Debian's `chromium` is not installed; `.ci/run` installs it)."""

import html
import json
import re
import shutil
import subprocess

import pytest

from rambench.report.document import write_report
from rambench.results import ResultSet
from tests.fake_study import write_fake_study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

# runs in the page: counts images that did not decode, the page's horizontal overflow and
# every script error, and leaves them in an attribute of <body> for --dump-dom
PROBE = """<script>window.__errors=[];
window.addEventListener('error',e=>window.__errors.push(String(e.message||e.type)),true);
window.addEventListener('load',()=>{const imgs=[...document.images];
const page=document.documentElement;
document.body.setAttribute('data-check',JSON.stringify({images:imgs.length,
alts:imgs.map(i=>i.alt),
broken:imgs.filter(i=>!i.complete||i.naturalWidth===0).map(i=>i.alt),
pageWidth:page.clientWidth,scrollWidth:page.scrollWidth,
tables:[...document.querySelectorAll('table')].filter(t=>!t.closest('.scroll')&&
t.getBoundingClientRect().right>page.clientWidth).length,errors:window.__errors}));});
</script>"""


def render_in_chromium(path, width=1280):
    probe = path.with_name("probe.html")
    probe.write_text(path.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1),
                     encoding="utf-8")
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={width},900",
         "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'data-check="([^"]*)"', result.stdout)
    assert found, f"no probe result; chromium said: {result.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize("width", [1280, 800])
def test_report_opens_with_every_figure_and_no_page_overflow(tmp_path, width):
    store = write_fake_study(tmp_path / "results")
    out = write_report(ResultSet.read(store), tmp_path / "report")
    check = render_in_chromium(out["html"], width)
    assert check["images"] == 5 and check["broken"] == []
    assert check["errors"] == []
    assert check["scrollWidth"] <= check["pageWidth"]  # wide tables scroll in their box
    assert check["tables"] == 0


def test_a_real_studys_report_shows_the_audio_visual_events(tmp_path):
    """avdigits' quick grid (results/avdigits-peers): its AV events get a figure."""
    from pathlib import Path

    study = ResultSet.from_bundle(Path(__file__).parent.parent / "results/avdigits-peers")
    two = [r for r in study.records if r.method.label in ("raml", "late_fusion")]
    out = write_report(ResultSet(study.study, study.root, two, settings=study.settings),
                       tmp_path / "report")
    check = render_in_chromium(out["html"])
    assert "av figure" in check["alts"] and check["broken"] == [] and check["errors"] == []
    assert check["scrollWidth"] <= check["pageWidth"] and check["tables"] == 0


def test_the_probe_sees_a_broken_figure_and_an_overflowing_table(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><head></head><body><img alt='gone' "
                    "src='data:image/png;base64,AAAA'><table style='width:3000px'><tr>"
                    "<td>x</td></tr></table></body></html>")
    check = render_in_chromium(page)
    assert check["broken"] == ["gone"] and check["tables"] == 1
    assert check["scrollWidth"] > check["pageWidth"]
