"""harness report rendered by headless Chromium; harness serve queried over HTTP."""

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


def test_report_is_self_contained_and_its_plots_render(db, tmp_path, harness_cli):
    out = harness_cli("report", "--db", db, "-o", tmp_path / "report.html")
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "report.html").read_text()
    # Self-contained: plotly.js inlined, no tag that loads anything when the file is viewed.
    assert external_references(text) == [] and "Plotly.newPlot" in text
    assert "quality gate: top1 retained 0.7292 &lt; 0.99" in text
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    profile = tmp_path / "chromium-profile"
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=15000",
         "--dump-dom", (tmp_path / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # Each plot div, as rendered: plotly draws one <path class="point"> per marker into the SVG.
    plots = dict(re.findall(r'<div id="([a-z0-9_-]+)" class="plotly-graph-div[^"]*"(.*?)</section>', html, re.S))
    assert set(plots) == {"pareto-latency-onnxruntime-cpu", "pareto-latency-torch-cpu", "pareto-size",
                          "history-p50_ms", "history-top1"}
    points = {name: len(re.findall(r'class="point"', body)) for name, body in plots.items()}
    assert all("main-svg" in body for body in plots.values())
    assert points == {"pareto-latency-onnxruntime-cpu": 5, "pareto-latency-torch-cpu": 5, "pareto-size": 10,
                      "history-p50_ms": 3 * 10, "history-top1": 3 * 10}
    # The frontier trace and the flagged trace are drawn, with their legends.
    legend = re.findall(r'class="legendtext"[^>]*>([^<]+)<', plots["pareto-latency-onnxruntime-cpu"])
    assert legend == ["Pareto frontier", "dominated", "flagged (never ranked)"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_serve_answers_json_read_only_with_canned_queries_and_metadata(db, tmp_path):
    pytest.importorskip("datasette", reason="datasette is the [serve] extra; .ci/run installs it")
    port = _free_port()
    env = dict(os.environ, HARNESS_QUERY_TIMEOUT_S="1.5")  # the limit datasette's queries run under too
    # Its output goes to a file: datasette logs a long traceback per refused query, which would fill
    # a pipe nobody reads and block the server.
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
        runs = _get(f"{base}/leaderboard/runs.json?_shape=array")
        assert [r["tag"] for r in runs] == ["nightly"] * 3
        databases = _get(f"{base}/-/databases.json")
        assert databases[0]["is_mutable"] is False  # immutable: opened read-only, never written
        ranked = _get(f"{base}/leaderboard/leaderboard.json?metric=p50_ms&_shape=array")
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
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"{base}/-/versions.json", timeout=2)
