"""What a leaderboard reader sees in the text formats: ranks, ties, whole numbers, flags in order."""

import json

import pytest
from synthetic import accuracy, identity, latency, new_run, open_store, record, size

from harness.query.columns import join_flags, split_flag
from harness.query.leaderboard import leaderboard, render

#: (method, params, top1, latency_ms, gzip_bytes): two pairs of equal top1; sparsity 0.9 fails the gate.
TIED = [
    ("dense", {}, 0.96, 1.0, 76680.0),
    ("global-magnitude", {"sparsity": 0.3}, 0.958, 0.8, 800.0),
    ("global-magnitude", {"sparsity": 0.5}, 0.958, 0.7, 600.0),
    ("global-magnitude", {"sparsity": 0.7}, 0.955, 0.6, 400.0),
    ("global-magnitude", {"sparsity": 0.9}, 0.70, 0.5, 200.0),
]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "o.db"
    store = open_store(path)
    run = new_run(store)
    for i, (method, params, top1, ms, gz) in enumerate(TIED):
        record(store, run, identity(method, params, None, "size"), size(gz, params.get("sparsity", 0.0)))
        record(store, run, identity(method, params, "onnxruntime-cpu", "accuracy"), accuracy(top1, 0.96))
        record(store, run, identity(method, params, "onnxruntime-cpu", "latency"), latency(ms, seed=i))
    store.close()
    return path


def test_equal_values_share_a_rank_and_the_next_one_skips(db):
    board = leaderboard(db, sort="top1")
    ranks = board["rank"].astype(object).where(board["rank"].notna(), None).tolist()
    assert list(board["top1"][:4]) == [0.96, 0.958, 0.958, 0.955]
    assert ranks == [1, 2, 2, 4, None]  # competition ranking; the flagged row has none
    assert list(leaderboard(db, sort="p50_ms")["rank"][:4]) == [1, 2, 3, 4]  # no ties: 1, 2, 3, 4


@pytest.mark.parametrize("fmt", ["markdown", "table"])
def test_text_formats_show_no_na_or_nan_and_whole_numbers_whole(db, fmt, harness_cli):
    out = harness_cli("leaderboard", "--db", db, "--sort", "top1", "--format", fmt, "--columns", "top1,gzip_bytes")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "<NA>" not in text and "nan" not in text.lower().replace("dense", "")
    assert "76680" in text and "e+" not in text
    flagged = next(line for line in text.splitlines() if "sparsity=0.9" in line)
    assert "quality gate: top1 retained" in flagged
    if fmt == "markdown":
        first = next(line for line in text.splitlines() if "| dense" in line)
        assert first.split("|")[1].strip() == "1"  # the rank, as an integer
        assert flagged.split("|")[1].strip() == ""  # unranked: empty, not <NA>


def test_render_formats_numbers_for_reading_and_keeps_json_exact():
    rows = [{"rank": 1, "bytes": 76680.0, "ms": 0.123456, "big": 123456.7, "flags": None}]
    md = render(rows, "markdown")
    assert "76680" in md and "0.1235" in md and "123457" in md and "nan" not in md and "None" not in md
    assert json.loads(render(rows, "json"))[0]["bytes"] == 76680.0


def test_flags_read_in_a_stable_order_and_a_flags_tail_stays_with_its_flag():
    # As older writers stored it: "; and 1 more" inside one flag.
    stored = "soundness: claims: claim sparsity 0.5 not true of the artifact: measured 0.3 (torch, x); and 1 more"
    assert split_flag(stored) == [stored.replace("; and", ", and")]
    assert split_flag("unsound: holds on 2 instances; invalid witness: on 1 instance") == [
        "unsound: holds on 2 instances", "invalid witness: on 1 instance"]
    text = join_flags(["latency only: block percentiles", stored, "unchecked: agreement has no result",
                       "quality gate: top1 retained 0.7 < 0.99", stored])
    parts = text.split("; ")
    assert parts[0] == "quality gate: top1 retained 0.7 < 0.99"
    assert parts[1].startswith("soundness: claims:") and parts[1].endswith(", and 1 more")
    assert parts[2:] == ["unchecked: agreement has no result", "latency only: block percentiles"]
    assert join_flags(reversed(["b: y", "a: x", None])) == join_flags(["a: x", "b: y"]) == "a: x; b: y"
    assert join_flags([None, ""]) is None


def test_an_emulated_rows_accuracy_still_ranks_when_its_flag_holds_a_semicolon(tmp_path):
    """The emulation flag of older versions held "; outputs and accuracy are real": the piece after it
    was read as a flag of its own, unscoped, and kept the row out of the accuracy ranking too."""
    path = tmp_path / "emu.db"
    store = open_store(path)
    run = new_run(store)
    old_flag = ("latency only: timed under emulation (qemu-user), not a hardware figure; "
                "outputs and accuracy are real")
    for method, top1, ms, flag in (("dense", 0.96, 1.0, None), ("int8-dynamic", 0.97, 0.5, old_flag)):
        record(store, run, identity(method, {}, None, "size"), size(1000.0, 0.0))
        record(store, run, identity(method, {}, "onnxruntime-cpu", "accuracy"), accuracy(top1, 0.96))
        record(store, run, identity(method, {}, "onnxruntime-cpu", "latency"),
               [dict(m, flag=flag) for m in latency(ms)])
    store.close()
    board = leaderboard(path, sort="top1")
    assert list(board["method"]) == ["int8-dynamic", "dense"] and list(board["rank"]) == [1, 2]
    assert board["flags"][0] == old_flag.replace("; ", ", ")
    by_latency = leaderboard(path, sort="p50_ms")
    assert by_latency["rank"].isna().tolist() == [False, True]


def test_results_keep_each_kind_of_parameter_apart_and_show_the_flag(tmp_path, harness_cli):
    path = tmp_path / "r.db"
    store = open_store(path)
    run = new_run(store, tag="nightly")
    ident = dict(identity("dynamic-batch", {"batch_size": 64}, "onnxruntime-cpu", "latency"),
                 model_params={"hidden": 32}, seed=3)
    record(store, run, ident, latency(1.0, batch=1))
    record(store, run, dict(identity("dense", {}, "onnxruntime-cpu", "accuracy"), model_params={"hidden": 32}),
           accuracy(0.5, 0.96))
    store.close()
    out = harness_cli("results", "--db", path, "--format", "json")
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout)
    p50 = next(r for r in records if r["metric"] == "p50_ms")
    assert p50["method_params"] == {"batch_size": 64} and p50["measure_params"] == {"batch_size": 1}
    assert p50["seed"] == 3 and p50["model_params"] == {"hidden": 32} and p50["flag"] is None
    gate = next(r for r in records if r["metric"] == "top1_retained")
    assert gate["flag"].startswith("quality gate: top1 retained 0.52")
    table = harness_cli("results", "--db", path)
    assert "batch_size=64" in table.stdout and "hidden=32" in table.stdout and "quality gate" in table.stdout
    csv = harness_cli("results", "--db", path, "--format", "csv").stdout.splitlines()[0].split(",")
    assert {"method_params", "measure_params", "seed", "model_params", "flag"} <= set(csv)
    runs = harness_cli("runs", "--db", path, "--format", "json")
    assert json.loads(runs.stdout)[0]["tag"] == "nightly"
    assert "nightly" in harness_cli("runs", "--db", path).stdout
