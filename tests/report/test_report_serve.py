"""harness report rendered by headless Chromium; harness serve queried over HTTP."""

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from synthetic import board, new_run, open_store

ENTRIES = [
    ("dense", {}, 0.96, 1.0, 1000.0),
    ("global-magnitude", {"sparsity": 0.3}, 0.958, 0.8, 800.0),
    ("global-magnitude", {"sparsity": 0.5}, 0.955, 0.9, 600.0),
    ("global-magnitude", {"sparsity": 0.9}, 0.70, 0.5, 200.0),  # flagged by the quality gate
    ("int8-dynamic", {}, 0.961, 1.2, 300.0),
]
BACKENDS = ("onnxruntime-cpu", "torch-cpu")


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "leaderboard.db"
    store = open_store(path)
    for night in range(3):
        board(store, new_run(store, tag="nightly"), ENTRIES, seed=night, backends=BACKENDS)
    store.close()
    return path


def external_references(text: str) -> list:
    """Tags that would fetch something (script src, link href, img src, iframe), script bodies excluded."""
    from html.parser import HTMLParser

    found = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if (tag in ("script", "img", "iframe") and attrs.get("src")) or (tag == "link" and attrs.get("href")):
                found.append((tag, attrs))

    Tags().feed(text)
    return found


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


#: Injected into a copy of the page by the tests (never part of the report): after load, the page's
#: height and the widths of its tables, as attributes of <body> that --dump-dom shows.
MEASURE = """<script>window.addEventListener("load", function () { setTimeout(function () {
  var b = document.body, board = document.getElementById("board"), top = document.querySelector("table.top");
  b.setAttribute("data-height", document.documentElement.scrollHeight);
  b.setAttribute("data-board-width", board ? board.scrollWidth : 0);
  b.setAttribute("data-top-width", top ? top.scrollWidth : 0);
  b.setAttribute("data-row-height", board && board.tBodies[0].rows.length ?
    Math.max.apply(null, Array.prototype.map.call(board.tBodies[0].rows, function (r) { return r.offsetHeight; })) : 0);
}, 0); });</script>"""


def browse(page, tmp_path, *, width=1400, screenshot=None):
    """``(dom, attributes)`` of ``page`` rendered by headless Chromium at ``width`` px; a full-page screenshot
    to ``screenshot`` when given. Skips when Chromium is missing."""
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    measured = tmp_path / f"measured-{page.name}"
    measured.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--hide-scrollbars", "--virtual-time-budget=30000"]
    dom = subprocess.run([*base, f"--window-size={width},1000", "--dump-dom", measured.as_uri()],
                         capture_output=True, text=True, timeout=300)
    assert dom.returncode == 0, dom.stderr[-2000:]
    attrs = {k: int(v) for k, v in re.findall(r'data-(height|board-width|top-width|row-height)="(\d+)"', dom.stdout)}
    if screenshot is not None:
        shot = subprocess.run([*base, f"--window-size={width},{attrs['height']}", f"--screenshot={screenshot}",
                               page.as_uri()], capture_output=True, text=True, timeout=300)
        assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    return dom.stdout, attrs


def test_report_is_self_contained_and_its_plots_render(db, tmp_path, harness_cli):
    out = harness_cli("report", "--db", db, "-o", tmp_path / "report.html")
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "report.html").read_text()
    # Self-contained: plotly.js and the table script inlined, no tag that loads anything when the file is viewed.
    assert external_references(text) == [] and "Plotly.newPlot" in text and "board-data" in text
    assert "quality gate: top1 retained 0.7292 &lt; 0.99" in text and "&lt;NA&gt;" not in text and "<NA>" not in text
    html, attrs = browse(tmp_path / "report.html", tmp_path, screenshot=tmp_path / "report.png")
    # Each plot div, as rendered: plotly draws one <path class="point"> per marker into the SVG.
    plots = dict(re.findall(r'<div id="([a-z0-9_-]+)" class="plotly-graph-div[^"]*"(.*?)</section>', html, re.S))
    assert set(plots) == {"pareto-latency-onnxruntime-cpu", "pareto-latency-torch-cpu", "pareto-size",
                          "history-p50_ms", "history-top1"}
    points = {name: len(re.findall(r'class="point"', body)) for name, body in plots.items()}
    assert all("main-svg" in body for body in plots.values())
    # History: an overview per backend (3 runs each) and a panel per ranked entry (8 of them, 3 runs each).
    assert points == {"pareto-latency-onnxruntime-cpu": 5, "pareto-latency-torch-cpu": 5, "pareto-size": 10,
                      "history-p50_ms": 2 * 3 + 8 * 3, "history-top1": 2 * 3 + 8 * 3}
    assert re.findall(r'data-panels="(\d+)"', html) == ["10", "10"]
    # The frontier trace and the flagged trace are drawn, with their legends; axes have titles with units.
    legend = re.findall(r'class="legendtext"[^>]*>([^<]+)<', plots["pareto-latency-onnxruntime-cpu"])
    assert legend == ["Pareto frontier", "dominated", "flagged (never ranked)"]
    titles = re.findall(r'class="g-[xy]title"[^>]*>.*?<text[^>]*>([^<]+)<', plots["pareto-latency-torch-cpu"], re.S)
    assert set(titles) == {"p50_ms at batch 1 (ms)", "top1 (fraction)"}
    assert "run start (UTC)" in plots["history-p50_ms"] and "p50_ms / first run (ratio)" in plots["history-p50_ms"]
    # The summary comes first, with the ranked top; the table is drawn by its script, flags as badges.
    assert html.index('id="summary"') < html.index('id="plots"') < html.index('id="leaderboard"')
    top = re.search(r'<table class="board top">(.*?)</table>', html, re.S).group(1)
    # Each entry's accuracy is the same on both backends: tied pairs share a rank (competition ranking).
    assert [int(r) for r in re.findall(r"<tr><td[^>]*>(\d+)</td>", top)] == [1, 1, 3, 3, 5, 5, 7, 7]
    board = re.search(r'<table class="board" id="board">(.*?)</table>', html, re.S).group(1)
    assert len(re.findall(r"<tr>", board)) == 1 + 10  # heading and every entry
    assert len(re.findall(r'<span class="badge amber" title="quality gate: top1 retained 0.7292 &lt; 0.99">'
                          r"quality gate</span>", board)) == 2
    assert "rows 1-10 of 10" in html
    # It fits 1400 px: the tables are narrower than the page, rows one line high.
    assert 0 < attrs["board-width"] <= 1360 and 0 < attrs["top-width"] <= 1360 and attrs["row-height"] < 40, attrs


def test_one_run_has_no_history_plot_and_says_when_history_starts(tmp_path):
    from harness.report.html import build_report

    path = tmp_path / "one.db"
    store = open_store(path)
    board(store, new_run(store), ENTRIES, backends=BACKENDS)
    store.close()
    page = build_report(path)
    # A single run would draw one point per panel: the page says history starts with the second run instead.
    assert 'id="history"' in page and "One run on this machine so far" in page and "history-p50_ms" not in page
    assert 'id="pareto-size"' in page and "(1 run)" in page and "<b>1</b>run" in page


def test_report_builds_its_figures_without_plotly_python_objects(db):
    # plotly.graph_objects' import and validation were most of the report's time: the figures are plotly's
    # JSON schema written directly, and plotly.js is read from the package's files without importing it.
    code = ("import sys; from harness.report.html import build_report; page = build_report(sys.argv[1]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'plotly'), 'Plotly.newPlot' in page)")
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["[]", "True"]


def test_report_at_scale_keeps_the_page_short_and_points_to_serve(tmp_path, harness_cli):
    import sys as _sys

    _sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from generate import generate

    db = tmp_path / "generated.db"
    generate(db, artifacts=200, full_runs=4, partial_run=False)  # 400 entries per machine, 4 runs
    out = harness_cli("report", "--db", db, "-o", tmp_path / "report.html")
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "report.html").read_text()
    from harness.report.html import build_report

    small = build_report(db, table_rows=100)
    assert "The table holds the first 100 of 400 entries" in small and "/generated/leaderboard?metric=top1" in small
    html, attrs = browse(tmp_path / "report.html", tmp_path, screenshot=tmp_path / "report-scale.png")
    # Small multiples, not one line per cell: two overview panels and 8 entries per history chart.
    assert re.findall(r'data-panels="(\d+)"', html) == ["10", "10"] and text.count('data-cells="400"') == 2
    board = re.search(r'<table class="board" id="board">(.*?)</table>', html, re.S).group(1)
    assert len(re.findall(r"<tr>", board)) == 1 + 50 and "rows 1-50 of 400 (page 1 of 8)" in html
    # The page's height does not grow with the entries: the issue saw 320,902 px at 4,000 entries.
    assert attrs["height"] < 9000 and attrs["board-width"] <= 1360 and attrs["row-height"] < 40, attrs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@contextlib.contextmanager
def _serving(db, tmp_path, env=None):
    """``harness serve`` on a free port, its output in a file (datasette logs a long traceback per refused
    query, which would fill a pipe nobody reads and block the server); yields its base URL once it answers."""
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "serve", "--db", str(db), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(f"{base}/-/versions.json")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "datasette did not start"
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_serve_answers_json_read_only_with_canned_queries_and_metadata(db, tmp_path):
    pytest.importorskip("datasette", reason="datasette is the [serve] extra; .ci/run installs it")
    env = dict(os.environ, HARNESS_QUERY_TIMEOUT_S="1.5")  # the limit datasette's queries run under too
    with _serving(db, tmp_path, env) as base:
        runs = _get(f"{base}/leaderboard/runs.json?_shape=array")
        assert [r["tag"] for r in runs] == ["nightly"] * 3
        databases = _get(f"{base}/-/databases.json")
        assert databases[0]["is_mutable"] is False  # immutable: opened read-only, never written
        ranked = _get(f"{base}/leaderboard/leaderboard.json?metric=p50_ms&_shape=array")
        assert [r["row"] for r in ranked] == list(range(1, 11)) and {r["total_rows"] for r in ranked} == {10}
        ort = [r for r in ranked if r["backend"] == "onnxruntime-cpu"]
        assert [r["rank"] for r in ort][:4] == [1, 2, 3, 4] and ort[-1]["rank"] is None
        assert ort[-1]["flags"].startswith("quality gate") and ort[0]["method_params"] == '{"sparsity": 0.3}'
        front = _get(f"{base}/leaderboard/pareto.json?maximize=top1&minimize=p50_ms&_shape=array")
        assert {(r["backend"], r["method"], r["method_params"]) for r in front} == {
            (b, m, p) for b in BACKENDS for m, p in (("int8-dynamic", "{}"), ("dense", "{}"),
                                                     ("global-magnitude", '{"sparsity": 0.3}'))}
        worse = _get(f"{base}/leaderboard/regressions.json?base=1&new=3&threshold=0.05&_shape=array")
        assert worse == [] or all(r["change"] != 0 for r in worse)
        meta = _get(f"{base}/-/metadata.json")
        tables = meta["databases"]["leaderboard"]["tables"]
        metric_doc = tables["measurements"]["columns"]["metric"]
        assert "p50_ms (ms, lower is better): median latency of one batch" in metric_doc
        assert set(meta["databases"]["leaderboard"]["queries"]) == {"leaderboard", "pareto", "regressions"}
        # Writes are impossible: datasette refuses SQL that is not a read.
        try:
            urllib.request.urlopen(f"{base}/leaderboard.json?sql=DELETE+FROM+runs", timeout=10)
            refused = False
        except urllib.error.HTTPError as exc:
            refused = exc.code == 400
        assert refused
        # Custom SQL has the time limit: a runaway recursive query is stopped, the server keeps serving.
        runaway = urllib.parse.quote("WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) "
                                     "SELECT count(*) FROM r")
        with pytest.raises(urllib.error.HTTPError) as stopped:
            urllib.request.urlopen(f"{base}/leaderboard.json?sql={runaway}", timeout=60)
        assert stopped.value.code == 400 and "time limit" in stopped.value.read().decode().lower()
        assert _get(f"{base}/leaderboard/runs.json?_shape=array") == runs
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"{base}/-/versions.json", timeout=2)


def test_serve_pages_long_answers_and_refuses_writes_cleanly_on_a_generated_store(tmp_path):
    pytest.importorskip("datasette", reason="datasette is the [serve] extra; .ci/run installs it")
    import sys as _sys

    _sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from generate import generate

    from harness.report.serve import PAGE_ROWS

    db = tmp_path / "leaderboard.db"
    generate(db, artifacts=40, full_runs=12)
    with _serving(db, tmp_path) as base:
        # Every metric row of run 12 against run 11 (threshold -1): more rows than one page holds.
        query = f"{base}/leaderboard/regressions.json?base=11&new=12&threshold=-1&_shape=array"
        first, second = _get(query), _get(query + "&page=2")
        total = first[0]["total_rows"]
        assert total > PAGE_ROWS and len(first) == PAGE_ROWS and len(second) == min(total - PAGE_ROWS, PAGE_ROWS)
        assert [r["row"] for r in first + second] == list(range(1, len(first) + len(second) + 1))
        objects = _get(query.replace("_shape=array", "_shape=objects"))
        assert objects["truncated"] is False and len(objects["rows"]) == PAGE_ROWS  # a full page, nothing dropped
        # The canned leaderboard and Pareto queries answer on the generated store.
        ranked = _get(f"{base}/leaderboard/leaderboard.json?metric=top1&_shape=array")
        # two backends on two machines: 40 artifacts on the first, 20 on the second
        assert ranked[0]["rank"] == 1 and ranked[0]["total_rows"] == len(ranked) == 2 * 40 + 2 * 20
        assert _get(f"{base}/leaderboard/pareto.json?maximize=top1&minimize=p50_ms&_shape=array")
        # Writes of any kind: a clean 405, never a 500 with a traceback page.
        for path in ("/leaderboard/leaderboard?metric=top1", "/leaderboard/runs", "/leaderboard", "/-/versions"):
            request = urllib.request.Request(base + path, data=b"sql=DELETE+FROM+runs", method="POST")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            body = refused.value.read().decode()
            assert refused.value.code == 405 and "read-only" in body and "Traceback" not in body, (path, body)
            assert refused.value.headers["Allow"] == "GET, HEAD, OPTIONS"
