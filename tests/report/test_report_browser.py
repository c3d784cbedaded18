"""report.html in a real headless browser (Debian's chromium): the failure banner, images that load, no network.

The report is opened in an iframe of a small harness page whose script reads the report's DOM after load
and writes what it found into its own DOM, which `--dump-dom` prints. A screenshot of the report itself
checks that the banner is painted in its colour at the top of the page. Skipped only where chromium is not
installed (CI installs it with scripts/install_chromium.sh).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from streamtune_cli.report.trace_report import write_trace_reports

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (bash scripts/install_chromium.sh)")

# Only to stop a hung browser; nothing asserted depends on how long the browser takes.
_HANG_S = 180

_HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>harness</title></head><body>
<iframe id="report" src="report.html" style="width:1200px;height:900px"></iframe>
<pre id="result">pending</pre>
<script>
window.addEventListener("load", function () {
  var out = {};
  try {
    var win = document.getElementById("report").contentWindow, doc = win.document;
    var banners = doc.querySelectorAll(".banner"), banner = doc.getElementById("outcome");
    out.title = doc.title;
    out.banners = banners.length;
    if (banner) {
      var box = banner.getBoundingClientRect(), table = doc.querySelector("table").getBoundingClientRect();
      out.banner = {status: banner.getAttribute("data-outcome"), className: banner.className, text: banner.textContent,
                    top: box.top, height: box.height, belowTable: box.top > table.top,
                    background: win.getComputedStyle(banner).backgroundColor};
    }
    out.images = Array.prototype.map.call(doc.images, function (img) {
      return {complete: img.complete, width: img.naturalWidth, height: img.naturalHeight, shown: img.getBoundingClientRect().width,
              src: img.getAttribute("src").slice(0, 22)};
    });
    out.resources = win.performance.getEntriesByType("resource").map(function (e) { return e.name; });
    out.refs = [];
    doc.querySelectorAll("[src],[href],[srcset],[poster],[data],[action],[background]").forEach(function (el) {
      ["src", "href", "srcset", "poster", "data", "action", "background"].forEach(function (a) {
        if (el.hasAttribute(a)) out.refs.push(a + "=" + el.getAttribute(a).slice(0, 22));
      });
    });
    out.cssUrls = Array.prototype.map.call(doc.querySelectorAll("style"), function (s) { return s.textContent; })
      .join("\\n").match(/url\\(|@import/g) || [];
    out.scripts = doc.scripts.length;
    var csp = doc.querySelector('meta[http-equiv="Content-Security-Policy"]');
    out.csp = csp ? csp.getAttribute("content") : null;
  } catch (e) { out.error = String(e); }
  document.getElementById("result").textContent = JSON.stringify(out);
});
</script></body></html>
"""


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}",
        # nothing resolves: if the page asked for anything on the network it could not get it, and it shows
        "--host-resolver-rules=MAP * ~NOTFOUND",
        *args,
    ]
    env = {**os.environ, "HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config"), "XDG_CACHE_HOME": str(tmp / "cache")}
    return subprocess.run(command, capture_output=True, text=True, timeout=_HANG_S, env=env, check=False)


def _inspect(folder: Path, tmp: Path) -> dict:
    harness = folder / "harness.html"
    harness.write_text(_HARNESS)
    result = _chromium(tmp, "--allow-file-access-from-files", "--virtual-time-budget=10000", "--dump-dom", harness.as_uri())
    harness.unlink()
    found = re.search(r'<pre id="result">(.*?)</pre>', result.stdout, flags=re.S)
    assert found, f"chromium printed no result (rc {result.returncode}): {result.stderr[-2000:]}"
    data = json.loads(found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    assert "error" not in data, data
    return data


def _screenshot(folder: Path, tmp: Path):  # noqa: ANN202 - a PIL image
    from PIL import Image

    shot = tmp / f"{folder.name}.png"
    result = _chromium(tmp, "--hide-scrollbars", "--window-size=1200,900", f"--screenshot={shot}", (folder / "report.html").as_uri())
    assert shot.is_file(), f"no screenshot (rc {result.returncode}): {result.stderr[-2000:]}"
    return Image.open(shot).convert("RGB")


def _rgb(css: str) -> tuple[int, int, int]:
    red, green, blue = (int(v) for v in re.findall(r"\d+", css)[:3])
    return red, green, blue


def _share_of_colour(image, colour: tuple[int, int, int], top: int, bottom: int) -> float:  # noqa: ANN001
    """Share of the pixels in rows [top, bottom) within 6 of `colour` on every channel."""
    import numpy as np

    region = np.asarray(image.crop((0, top, image.width, bottom)), dtype=np.int16)
    close = (np.abs(region - np.array(colour, dtype=np.int16)) <= 6).all(axis=-1)
    return float(close.mean())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, failed_trace, good_trace) -> dict[str, tuple[dict, object]]:  # noqa: ANN001
    """For each run: what the browser found in report.html, and a screenshot of its top."""
    tmp = tmp_path_factory.mktemp("browser")
    out = {}
    for name, (trace, oracle) in (("failed", failed_trace), ("good", good_trace)):
        folder = tmp / name
        write_trace_reports(trace, folder, oracle=oracle)
        out[name] = (_inspect(folder, tmp), _screenshot(folder, tmp))
    return out


def test_failed_run_has_a_failure_banner_at_the_top(rendered):
    dom, _ = rendered["failed"]
    assert dom["title"].startswith("FAILED")
    assert dom["banners"] == 1
    banner = dom["banner"]
    assert banner["status"] == "failed" and "failed" in banner["className"].split()
    assert banner["text"].startswith("FAILED") and "Target not met at the peak" in banner["text"]
    assert not banner["belowTable"] and banner["top"] < 300 and banner["height"] > 30


def test_good_run_has_no_failure_banner(rendered):
    dom, _ = rendered["good"]
    assert dom["banners"] == 1 and dom["banner"]["status"] == "ok"
    assert "failed" not in dom["banner"]["className"].split()
    assert not dom["title"].startswith("FAILED") and "FAILED" not in dom["banner"]["text"]
    assert dom["banner"]["background"] != rendered["failed"][0]["banner"]["background"]


@pytest.mark.parametrize("run", ["failed", "good"])
def test_images_load_and_nothing_is_fetched(rendered, run):
    dom, _ = rendered[run]
    assert len(dom["images"]) == 5  # DAG, parallelism, rates and lag, two heat maps
    for image in dom["images"]:
        assert image["complete"] and image["width"] > 100 and image["height"] > 100 and image["shown"] > 0
        assert image["src"] == "data:image/png;base64,"
    assert dom["resources"] == []  # the browser loaded nothing beyond the page itself
    assert all(ref.split("=", 1)[1].startswith("data:image/png;base64,") for ref in dom["refs"])
    assert dom["cssUrls"] == [] and dom["scripts"] == 0
    assert dom["csp"] and "default-src 'none'" in dom["csp"]


def test_banner_is_painted_in_its_colour_at_the_top(rendered):
    failed_dom, failed_shot = rendered["failed"]
    good_dom, good_shot = rendered["good"]
    failed_colour = _rgb(failed_dom["banner"]["background"])
    good_colour = _rgb(good_dom["banner"]["background"])
    for dom, shot in ((failed_dom, failed_shot), (good_dom, good_shot)):
        top = int(dom["banner"]["top"])
        bottom = top + int(dom["banner"]["height"])
        # the banner's rows are mostly its background colour...
        assert _share_of_colour(shot, _rgb(dom["banner"]["background"]), top, bottom) > 0.3
    # ...and the other outcome's colour is nowhere near the top of the page
    assert _share_of_colour(good_shot, failed_colour, 0, 400) < 0.001
    assert _share_of_colour(failed_shot, good_colour, 0, 400) < 0.001
