"""Energy counters: the CPU's RAPL counters (Linux powercap) and an NVIDIA GPU's NVML total-energy counter.

Read directly, not through codecarbon: codecarbon reads the same RAPL files, but where they are
missing or unreadable it falls back to an estimate from the CPU's TDP and reports it as the
figure, which is exactly what a measurement must never do here; it also samples on a thread every
15 seconds by default and writes files. A counter either opens, or :class:`EnergyUnavailable` says
why not; nothing is ever estimated.

- **RAPL**: every package domain ``/sys/class/powercap/intel-rapl:N/energy_uj`` (AMD's kernels
  expose theirs under the same name), summed. Each counter wraps at its ``max_energy_range_uj``;
  :meth:`EnergyCounter.read` accumulates deltas with the wrap added back, so read it at least once
  per wrap period (minutes at full power). A package counter includes everything on the package:
  idle power and other processes too.
- **NVML**: ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since the driver loaded; Volta and
  later) through nvidia-ml-py, NVIDIA's own binding. The whole board: every process on the GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


class EnergyUnavailable(Exception):
    """No energy counter can be read here; the message says why (a cell records it as skipped)."""


@dataclass
class EnergyCounter:
    """A monotonic energy reading in millijoules, from raw counters that may wrap.

    :param method: ``rapl`` or ``nvml``.
    :param source: what it reads (the domains' files, the GPU's name and index).
    :param raw: ``raw() -> list[float]``: each domain's counter now, in millijoules.
    :param ranges: each domain's wrap range in millijoules (``None``: it does not wrap).
    """

    method: str
    source: str
    raw: Callable[[], list[float]]
    ranges: list[float | None]
    _last: list[float] | None = field(default=None, init=False)
    _total: float = field(default=0.0, init=False)

    def read(self) -> float:
        """Millijoules used since the first read (the first read returns 0)."""
        now = self.raw()
        if self._last is not None:
            for before, after, wrap in zip(self._last, now, self.ranges):
                delta = after - before
                if delta < 0 and wrap:  # the counter wrapped past its range once
                    delta += wrap
                self._total += max(delta, 0.0)
        self._last = now
        return self._total


def _read_number(path: Path) -> float:
    return float(path.read_text().strip())


def rapl_counter(root: Path | str = POWERCAP) -> EnergyCounter:
    """The sum of every RAPL package domain under ``root``; :class:`EnergyUnavailable` with the reason when
    there is none or none can be read."""
    root = Path(root)
    if not root.is_dir():
        raise EnergyUnavailable(f"no RAPL counters: {root} does not exist (no powercap driver exposed to this "
                                "machine or container)")
    packages = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
    if not packages:
        raise EnergyUnavailable(f"no RAPL counters: {root} has no intel-rapl:N package domain")
    files, ranges, names = [], [], []
    for pkg in packages:
        energy = pkg / "energy_uj"
        try:
            _read_number(energy)
        except PermissionError:
            raise EnergyUnavailable(f"RAPL counter {energy} is not readable by this user (root only since "
                                    "Linux 5.10, CVE-2020-8694)") from None
        except (OSError, ValueError) as exc:
            raise EnergyUnavailable(f"RAPL counter {energy} cannot be read: {exc}") from None
        try:
            ranges.append(_read_number(pkg / "max_energy_range_uj") / 1000.0)
        except (OSError, ValueError):
            ranges.append(None)
        files.append(energy)
        try:
            names.append((pkg / "name").read_text().strip())
        except OSError:
            names.append(pkg.name)

    def raw() -> list[float]:
        return [_read_number(f) / 1000.0 for f in files]

    return EnergyCounter("rapl", ", ".join(f"{n} ({f})" for n, f in zip(names, files)), raw, ranges)


def nvml_counter(index: int = 0) -> EnergyCounter:
    """GPU ``index``'s NVML total-energy counter; :class:`EnergyUnavailable` with the reason when it cannot be read."""
    try:
        import pynvml
    except ImportError:
        raise EnergyUnavailable("nvidia-ml-py is not installed (pip install nvidia-ml-py): no NVML "
                                "energy counter") from None
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError as exc:
        raise EnergyUnavailable(f"NVML total-energy counter of GPU {index} cannot be read: {exc}") from None

    def raw() -> list[float]:
        return [float(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))]

    return EnergyCounter("nvml", f"{name if isinstance(name, str) else name.decode()} (GPU {index}, "
                                 "nvmlDeviceGetTotalEnergyConsumption)", raw, [None])


def counter_for(device: str) -> EnergyCounter:
    """The counter that measures ``device``: ``cpu`` (RAPL) or ``cuda:N`` (NVML of GPU N)."""
    import os

    if device.startswith("cuda"):
        _, _, index = device.partition(":")
        i = int(index or 0)
        # NVML numbers the physical GPUs; CUDA numbers the visible ones in CUDA_VISIBLE_DEVICES' order.
        visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
        if i < len(visible) and all(v.isdigit() for v in visible):
            i = int(visible[i])
        return nvml_counter(i)
    if device == "cpu":
        return rapl_counter()
    raise EnergyUnavailable(f"no energy counter for device {device!r}")
