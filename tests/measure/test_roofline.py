"""The physical-limit check: the attainable peak (measured, cached, verified) and the roofline verdict."""

import json

import pytest

from harness.measure import peak as peaks
from harness.measure.roofline import INT8_FACTOR, MARGIN, check

PEAK = {"matmul_gflops": 100.0, "bandwidth_gbs": 20.0, "threads": 2}


def test_a_result_faster_than_the_machine_can_compute_is_flagged():
    # 1 GFLOP per sample in 1 us: 1,000,000 GFLOP/s on a 100 GFLOP/s machine.
    out = check(flops_per_sample=1e9, batch_size=1, latency_s=1e-6, peak=PEAK)
    assert out["flag"] == ("faster than this machine can compute: 1,000,000.0 GFLOP/s implied, peak 100.0 "
                           f"GFLOP/s at 2 thread(s) (more than {MARGIN:g}x the attainable peak)")
    assert out["roofline_fraction"] == pytest.approx(1e4)


def test_within_the_margin_is_reported_not_flagged():
    # 2.5x the peak (Winograd-class algorithms can do that) is a fraction above 1, not a flag.
    out = check(flops_per_sample=2.5e6, batch_size=32, latency_s=320e-6, peak=PEAK)  # 250 GFLOP/s
    assert out["implied_gflops"] == pytest.approx(250.0)
    assert out["flag"] is None and out["roofline_fraction"] == pytest.approx(2.5)
    honest = check(flops_per_sample=1e6, batch_size=1, latency_s=1e-4, peak=PEAK)  # 10 GFLOP/s
    assert honest["flag"] is None and honest["roofline_fraction"] == pytest.approx(0.1)


def test_eight_bit_cells_are_held_to_the_integer_peak():
    # 600 GFLOP/s: above 3x the fp32 peak, below 3x of 4x it.
    fp32 = check(flops_per_sample=6e5, batch_size=1, latency_s=1e-6, peak=PEAK)
    int8 = check(flops_per_sample=6e5, batch_size=1, latency_s=1e-6, peak=PEAK, int8=True)
    assert fp32["flag"] and int8["flag"] is None
    assert int8["peak_gflops"] == 100.0 * INT8_FACTOR


def test_weights_larger_than_the_cache_bound_the_latency_by_bandwidth():
    # 1 GB of weights read in 1 ms: 1,000 GB/s against 20 GB/s, though the FLOPs are modest.
    out = check(flops_per_sample=1e6, batch_size=1, latency_s=1e-3, peak=PEAK, weight_bytes=1e9,
                cache_bytes=32e6)
    assert "1,000.0 GB/s of weights implied, memory bandwidth 20.0 GB/s" in out["flag"]
    cached = check(flops_per_sample=1e6, batch_size=1, latency_s=1e-3, peak=PEAK, weight_bytes=1e6,
                   cache_bytes=32e6)
    assert cached["flag"] is None and "implied_gbs" not in cached


def test_a_zero_latency_is_flagged():
    assert check(flops_per_sample=1e6, batch_size=1, latency_s=0.0, peak=PEAK)["flag"].startswith(
        "faster than this machine can compute")


ENTRY = {"threads": 1, "matmul_gflops": 50.0, "bandwidth_gbs": 10.0, "library": "test"}


def measure_counting(calls):
    def measure():
        calls.append(1)
        return dict(ENTRY)
    return measure


def test_the_peak_is_measured_once_and_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    calls = []
    first = peaks.attainable("cpu:1", measure_counting(calls), key="m")
    again = peaks.attainable("cpu:1", measure_counting(calls), key="m")
    assert first["cache"] == "measured" and again["cache"] == "hit" and len(calls) == 1
    assert again["matmul_gflops"] == 50.0


@pytest.mark.parametrize("tamper", ["garbage", "edited", "nan", "huge", "other machine", "bool", "not a dict"])
def test_a_cache_that_fails_its_checks_is_measured_again(tmp_path, monkeypatch, tamper):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    peaks.attainable("cpu:1", measure_counting([]), key="m")
    path = peaks.cache_path("m")
    data = json.loads(path.read_text())
    body = {k: data[k] for k in ("format", "key", "entries")}
    if tamper == "garbage":
        path.write_bytes(b"\x80\x03cos\nsystem\n")  # a pickle: never loaded as one
    elif tamper == "edited":  # a figure changed without its checksum
        data["entries"]["cpu:1"]["matmul_gflops"] = 1e6
        path.write_text(json.dumps(data))
    else:
        entry = body["entries"]["cpu:1"]
        if tamper == "nan":
            entry["matmul_gflops"] = float("nan")
        elif tamper == "huge":
            entry["matmul_gflops"] = 1e12
        elif tamper == "bool":
            entry["threads"] = True
        elif tamper == "not a dict":
            body["entries"]["cpu:1"] = [1, 2]
        else:
            body["key"] = "another"
        path.write_text(json.dumps({**body, "sha256": peaks._checksum(body)}))
    calls = []
    out = peaks.attainable("cpu:1", measure_counting(calls), key="m")
    assert len(calls) == 1 and out["cache"].startswith("measured (refused cache: ")
    assert peaks.read_cache(path, "m")[0]["cpu:1"]["matmul_gflops"] == 50.0  # rewritten, valid again


def test_this_machines_peak_is_real_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    one = peaks.cpu_peak(1)
    assert one["matmul_gflops"] > 0.1 and one["bandwidth_gbs"] > 0.1 and one["threads"] == 1
    two = peaks.cpu_peak(2)
    # N threads can always do what one does: the bar never falls below the single-thread figure.
    assert two["matmul_gflops"] >= one["matmul_gflops"] and two["threads"] == 2
    assert peaks.cpu_peak(2)["cache"] == "hit"
    assert list(tmp_path.glob("peak/*.json")) == [peaks.cache_path(peaks.machine_key())]


def test_refreshing_keeps_the_best_figure_the_machine_has_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    busy = {**ENTRY, "matmul_gflops": 5.0, "bandwidth_gbs": 30.0}  # measured while a neighbour ran
    peaks.attainable("cpu:1", lambda: dict(busy), key="m")
    fresh = peaks.attainable("cpu:1", measure_counting([]), key="m", refresh=True)
    assert fresh["matmul_gflops"] == 50.0 and fresh["bandwidth_gbs"] == 30.0
    assert fresh["cache"] == "measured again (best of cached and new)"
    assert peaks.attainable("cpu:1", lambda: dict(busy), key="m")["matmul_gflops"] == 50.0
