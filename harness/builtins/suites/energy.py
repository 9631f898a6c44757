"""The energy suite: energy per batch of inference, from the hardware's own counters.

The CPU's RAPL package counters for a backend that runs on this machine's CPU, the GPU's NVML
total-energy counter for a CUDA session (:func:`harness.api.energy_counter`). Where no counter can
be read, or the backend runs elsewhere (over ssh, under emulation), the cell is skipped with the
reason; energy is never estimated (from TDP or anything else).

A counter covers the whole package or board: idle power and other processes are in it. So the
suite first reads the counter over ``idle_s`` with nothing running (``idle_w``), then runs the batch
repeatedly for at least ``duration_s`` and reports ``energy_mj`` (the gross counter delta per batch)
and ``energy_net_mj`` (with the idle power over the same time taken off). The record names the
counter, its files or device, the window and the batch count.
"""

from __future__ import annotations

from harness.api import (
    CellContext,
    EnergyUnavailable,
    Measurement,
    MetricSpec,
    Param,
    Skip,
    SuiteSpec,
    batch_len,
    energy_counter,
    hookimpl,
    take,
)

METRICS = (
    MetricSpec("energy_mj", "mJ", False,
               "energy per batch from the RAPL or NVML counter (gross: the whole package or board), parameter "
               "batch_size"),
    MetricSpec("energy_net_mj", "mJ", False,
               "energy_mj less the idle power measured just before over the same time"),
)


def device_of(session) -> str:
    """``cuda:N`` for a session on a CUDA device (its ``device`` attribute), else ``cpu``; :class:`Skip` for a
    session that runs on another machine or under emulation (this machine's counters do not measure it)."""
    info = session.info or {}
    if info.get("transport") == "ssh":
        raise Skip("the backend runs on another host over ssh: this machine's energy counters do not measure it")
    if info.get("emulated"):
        raise Skip("the backend runs under emulation: this machine's counters would measure the emulator, "
                   "not the device")
    device = getattr(session, "device", None)
    if device is not None and str(device).startswith("cuda"):
        index = getattr(device, "index", None)
        return f"cuda:{0 if index is None else index}"
    return "cpu"


def run(ctx: CellContext) -> list[Measurement]:
    """Idle, then the batch repeated for ``duration_s``, between two counter reads (see the module)."""
    import time

    s = ctx.settings
    x = ctx.splits.test.x
    bs = min(s["batch_size"], batch_len(x))
    batch = take(x, slice(0, bs))
    session = ctx.open_session()
    try:
        device = device_of(session)
        try:
            counter = energy_counter(device)
        except EnergyUnavailable as exc:
            raise Skip(f"energy: {exc}") from None
        for _ in range(s["warmup"]):
            session.run(batch)
        counter.read()
        t0 = time.perf_counter()
        time.sleep(s["idle_s"])
        idle_mj = counter.read()
        idle_s = time.perf_counter() - t0
        start, t0, n = counter.read(), time.perf_counter(), 0
        while n == 0 or time.perf_counter() - t0 < s["duration_s"]:
            session.run(batch)
            n += 1
        spent_mj, elapsed = counter.read() - start, time.perf_counter() - t0
        info = dict(session.info)
    finally:
        session.close()
    idle_w = idle_mj / idle_s / 1000.0 if idle_s > 0 else 0.0
    info.update({"method": counter.method, "counter": counter.source, "device": device, "batches": n,
                 "window_s": round(elapsed, 4), "idle_w": round(idle_w, 4), "idle_s": round(idle_s, 4),
                 "covers": "the whole package or board: idle power and other processes included",
                 "never_estimated": True})
    params = {"batch_size": bs}
    gross = spent_mj / n
    net = (spent_mj - idle_w * elapsed * 1000.0) / n
    stats = {"total_mj": spent_mj, "power_w": spent_mj / elapsed / 1000.0 if elapsed else None}
    return [Measurement("energy_mj", gross, "mJ", params=params, info=info, stats=stats),
            Measurement("energy_net_mj", net, "mJ", params=params, info={"idle_w": idle_w})]


@hookimpl
def harness_register_suites(register):
    """Register the energy suite."""
    register(SuiteSpec(
        name="energy", run=run, metrics=METRICS, exclusive=True,
        settings=(Param("batch_size", int, default=32, min=1, max=65536, grid=False,
                        help="batch size of the measured inferences"),
                  Param("duration_s", float, default=2.0, min=0.01, grid=False,
                        help="at least this long between the two counter reads (counters tick coarsely)"),
                  Param("idle_s", float, default=1.0, min=0.0, grid=False,
                        help="idle window read first, to take idle power off energy_net_mj"),
                  Param("warmup", int, default=5, min=0, grid=False, help="untimed batches first")),
        description="energy per batch from RAPL (CPU) or NVML (GPU) counters; skipped with the reason where "
                    "none can be read",
        example=lambda workdir: {"duration_s": 0.05, "idle_s": 0.0},
    ))
