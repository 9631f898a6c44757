"""``harness report`` at scale, in a real browser: build time, file size, page height, render time, screenshots.

    python bench/report_shots.py OUT_DIR [--db DB] [--machine aaaa] [--name NAME]

Without ``--db`` it generates ``bench/generate.py``'s store (1,350,000 measurements) in OUT_DIR. Writes
``NAME.html``, a full-page screenshot ``NAME.png``, a first-screen one ``NAME-top.png`` (1400 px wide) and
the page cut into its summary, plots and table (``NAME-summary.png``, ``NAME-plots.png``, ``NAME-table.png``),
and prints the figures: the report command's wall time, the page's height, the widths of its tables, and
the time headless Chromium takes to load it (``performance.now()`` at the load event: parsing plotly.js and
drawing every plot) and to exit. Needs Chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MEASURE = """<script>window.addEventListener("load", function () {
  var b = document.body, board = document.getElementById("board"), top = document.querySelector("table.top");
  b.setAttribute("data-load-ms", Math.round(performance.now()));
  b.setAttribute("data-height", document.documentElement.scrollHeight);
  b.setAttribute("data-board-width", board ? board.scrollWidth : 0);
  b.setAttribute("data-top-width", top ? top.scrollWidth : 0);
  b.setAttribute("data-plots", document.querySelectorAll(".plotly-graph-div .main-svg").length);
  ["plots", "leaderboard", "runs"].forEach(function (id) {
    var e = document.getElementById(id);
    b.setAttribute("data-at-" + id, e ? Math.round(e.getBoundingClientRect().top + window.scrollY) : 0);
  });
});</script>"""
#: The parts of the full-page screenshot written on their own (``NAME-PART.png``): from one section to the next.
PARTS = (("summary", None, "plots"), ("plots", "plots", "leaderboard"), ("table", "leaderboard", None))


def chromium() -> list[str]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--user-data-dir=/tmp/report-shots"]


def crop(out: Path, name: str, attrs: dict[str, int]) -> list[Path]:
    """Cut the full-page screenshot into :data:`PARTS` (Pillow, which harness-plugins installs)."""
    from PIL import Image

    written = []
    with Image.open(out / f"{name}.png") as page:
        for part, start, end in PARTS:
            top = attrs.get(f"at-{start}", 0) if start else 0
            bottom = attrs.get(f"at-{end}", 0) if end else page.height
            if bottom > top:
                path = out / f"{name}-{part}.png"
                page.crop((0, top, page.width, min(bottom, page.height))).save(path)
                written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--machine", default=None)
    parser.add_argument("--name", default="report")
    opts = parser.parse_args()
    opts.out.mkdir(parents=True, exist_ok=True)
    db = opts.db
    if db is None:
        db = opts.out / "generated.db"
        if not db.exists():
            sys.path.insert(0, str(HERE))
            from generate import generate

            print(generate(db), file=sys.stderr)
    page = opts.out / f"{opts.name}.html"
    cmd = [sys.executable, "-m", "harness.cli", "report", "--db", str(db), "-o", str(page)]
    if opts.machine:
        cmd += ["--machine", opts.machine]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    built = time.perf_counter() - start
    measured = opts.out / f".{opts.name}-measured.html"
    measured.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    start = time.perf_counter()
    dom = subprocess.run([*chromium(), "--window-size=1400,1000", "--dump-dom", measured.as_uri()],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    browser_s = time.perf_counter() - start
    attrs = {k: int(v) for k, v in re.findall(r'data-(load-ms|height|board-width|top-width|plots|at-[a-z]+)="(\d+)"',
                                              dom)}
    measured.unlink()
    for name, height in ((f"{opts.name}.png", attrs["height"]), (f"{opts.name}-top.png", 1000)):
        subprocess.run([*chromium(), f"--window-size=1400,{height}", "--virtual-time-budget=30000",
                        f"--screenshot={opts.out / name}", page.as_uri()], capture_output=True, timeout=600,
                       check=True)
    shots = [opts.out / f"{opts.name}.png", opts.out / f"{opts.name}-top.png", *crop(opts.out, opts.name, attrs)]
    figures = {"report_s": round(built, 2), "html_mib": round(page.stat().st_size / 2 ** 20, 1),
               "page_height_px": attrs["height"], "board_width_px": attrs["board-width"],
               "top_width_px": attrs["top-width"], "plots": attrs["plots"], "load_ms": attrs["load-ms"],
               "chromium_dump_dom_s": round(browser_s, 2),
               "screenshots": [str(p) for p in shots]}
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
