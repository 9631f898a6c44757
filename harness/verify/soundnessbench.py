"""A verification benchmark with hidden counterexamples, after SoundnessBench (Zhou et al. 2024,
"Testing Neural Network Verifiers: A Soundness Benchmark with Hidden Counterexamples").

Recipe, on a CPU in minutes:

1. **Synthetic inputs**: points drawn uniformly from ``[-r, r]^d``, at least ``2 epsilon`` apart
   (L-infinity), all of class 1, each the centre of an ``epsilon`` box (clipped to the data range).
2. **Planted counterexamples**: for a *planted* point ``x0``, a counterexample ``x_cex`` at the edge
   of its box: a few coordinates moved by 98-100% of ``epsilon``, the rest by at most ``r / 100``
   (SoundnessBench's construction): far from the corners an attack drifts to.
3. **Training that hides them** (two objectives, as SoundnessBench): adversarial training keeps
   every box of class 1 against PGD (a window of the last attacks' points), while a hinge loss keeps
   each ``x_cex`` misclassified by ``counter_margin``. Two additions make it converge in
   thousands of CPU steps rather than GPU hours: inside planted boxes the class-1 margin must rise
   towards ``x_cex`` (a ramp, sampled at log-uniform distances outside a small well), so gradients
   lead attacks *away* from it; and the first layer starts with weights scaled by ``1 / epsilon``.
   The CNN needs a wider well (0.2 epsilon against the MLP's 0.05) and its planted-box terms
   averaged over the samples that fall short (:data:`ARCH_DEFAULTS`); it keeps fewer counterexamples
   hidden (4 of 9 candidates at seed 0, against the MLP's 6 of 6 asked).
4. **Only hidden ones are kept**: a planted instance survives when its ``x_cex`` is misclassified
   (replayed in onnxruntime) and a strong multi-restart PGD (several step sizes, fresh starts each)
   finds no counterexample in its box; a clean instance survives when that attack finds nothing.
   More candidates than asked for are planted; the first survivors are kept.

Written in SoundnessBench's layout: ``model.onnx``, ``model.pt`` (the torch module), ``data.pt``
(``[(x0, label, x_cex or None), ...]``, in instance order), ``vnnlib/<i>.vnnlib``,
``instances.csv`` (VNN-COMP's ``onnx,vnnlib,timeout``) and ``benchmark.json`` (the recipe,
counts and timings).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ARCHS = ("mlp", "cnn")
#: Ramp target of the class-1 margin inside planted boxes: RAMP_HIGH * (1 - s / (2 eps)) + RAMP_LOW.
RAMP_HIGH, RAMP_LOW = 2.0, 2.0
#: Per architecture: the radius of the well around x_cex left to the counterexample (a fraction of
#: epsilon), and how the planted-box terms are averaged (``mean``: over all their samples;
#: ``shortfall``: over the samples that fall short, so that a few attack points are not diluted by
#: the many samples the network already holds). The CNN's shared kernels cannot carve the MLP's narrow
#: well, and with plain means they leave the far side of planted boxes open to attack.
ARCH_DEFAULTS = {"mlp": {"well": 0.05, "balance": "mean"}, "cnn": {"well": 0.2, "balance": "shortfall"}}
BALANCES = ("auto", "mean", "shortfall")
#: Ramp samples per planted box and epoch (log-uniform distance, and uniform in the box).
SHELL_SAMPLES, BOX_SAMPLES = 64, 64
#: Step sizes of the training attack (fractions of the half-width), drawn per epoch.
TRAIN_STEPS = (0.1, 0.05, 0.02)


@dataclass(frozen=True)
class Recipe:
    """What to generate; every field is a parameter of the ``soundnessbench`` benchmark."""

    arch: str = "mlp"
    planted: int = 6
    clean: int = 6
    epsilon: float = 0.2
    data_range: float = 1.0
    input_size: int = 5
    hidden: int = 32
    channels: int = 12
    epochs: int = 2000
    lr: float = 1e-2
    attack_restarts: int = 10
    attack_steps: int = 40
    window: int = 50
    eval_restarts: int = 200
    counter_margin: float = 0.01
    well: float = 0.0
    balance: str = "auto"
    timeout: float = 60.0
    seed: int = 0

    def resolved(self, key: str) -> Any:
        """``well`` or ``balance``, the architecture's default when left at 0 / ``auto``."""
        value = getattr(self, key)
        return ARCH_DEFAULTS[self.arch][key] if value in (0.0, "auto") else value


def build_model(recipe: Recipe) -> Any:
    """The network: ``mlp`` d -> 2h -> h -> 2, or ``cnn`` conv(3x3, pad 1) -> h -> 2, ReLU between."""
    from torch import nn

    s = recipe.input_size
    if recipe.arch == "mlp":
        h = recipe.hidden
        return nn.Sequential(nn.Linear(s, 2 * h), nn.ReLU(), nn.Linear(2 * h, h), nn.ReLU(), nn.Linear(h, 2))
    if recipe.arch == "cnn":
        c = recipe.channels
        return nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(c * s * s, recipe.hidden), nn.ReLU(), nn.Linear(recipe.hidden, 2))
    raise ValueError(f"unknown architecture {recipe.arch!r} (known: {', '.join(ARCHS)})")


def input_shape(recipe: Recipe) -> tuple[int, ...]:
    """One sample's shape: ``(input_size,)`` for the MLP, ``(1, input_size, input_size)`` for the CNN."""
    s = recipe.input_size
    return (s,) if recipe.arch == "mlp" else (1, s, s)


def relu_units(model: Any, shape: tuple[int, ...]) -> int:
    """ReLU units of one forward pass (what a MILP encoding may need a binary for)."""
    import torch

    count = [0]
    hooks = [m.register_forward_hook(lambda _m, _i, out: count.__setitem__(0, count[0] + out[0].numel()))
             for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    try:
        with torch.no_grad():
            model(torch.zeros((1, *shape)))
    finally:
        for h in hooks:
            h.remove()
    return count[0]


def _points(rng: Any, n: int, d: int, r: float, eps: float) -> Any:
    import numpy as np

    pts: list = []
    tries = 0
    while len(pts) < n:
        tries += 1
        if tries > 100_000:
            raise ValueError(f"cannot place {n} points 2 epsilon apart in [-{r}, {r}]^{d}: lower epsilon or "
                             "the instance counts, or raise input_size")
        x = rng.uniform(-r, r, d)
        if all(np.abs(x - p).max() > 2 * eps for p in pts):
            pts.append(x)
    return np.array(pts)


def _plant(rng: Any, x0: Any, eps: float, r: float) -> Any:
    """A counterexample at the edge of ``x0``'s box."""
    import numpy as np

    d = len(x0)
    noise = rng.uniform(-r / 100, r / 100, d)
    k = max(1, int(rng.binomial(d, 0.1)))
    idx = rng.choice(d, k, replace=False)
    noise[idx] = rng.choice([-1.0, 1.0], k) * rng.uniform(0.98 * eps, eps, k)
    lo, hi = np.maximum(x0 - eps, -r), np.minimum(x0 + eps, r)
    return np.clip(x0 + noise, lo, hi)


def _margin(out: Any, label: int = 1) -> Any:
    """Class-``label`` logit minus the other class's (two classes)."""
    return out[:, label] - out[:, 1 - label]


def train(recipe: Recipe, x0: Any, cex: Any, clean: Any, log: Any = None) -> Any:
    """Train a network that is robust around every point except at the planted counterexamples."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from harness.verify.attack import pgd

    shape = input_shape(recipe)
    eps, r = recipe.epsilon, recipe.data_range
    d = int(np.prod(shape))
    model = build_model(recipe)
    with torch.no_grad():  # the boxes are small: start the first layer at their scale
        first = next(m for m in model if hasattr(m, "weight"))
        first.weight.mul_(1.0 / eps)
    gen = torch.Generator().manual_seed(recipe.seed)
    T = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32).reshape(-1, *shape)  # noqa: E731
    n_pl = len(x0)
    X = torch.cat([T(x0), T(clean)]) if len(clean) else T(x0)
    Xc = T(cex)
    lo, hi = torch.clamp(X - eps, -r, r), torch.clamp(X + eps, -r, r)
    a = torch.tensor([[[1.0, -1.0]]])  # unsafe: Y_1 - Y_0 <= 0 (class 1 loses)
    b = torch.zeros(1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=recipe.epochs)
    window: list = []
    well = recipe.resolved("well") * eps
    shortfall = recipe.resolved("balance") == "shortfall"

    def average(t: Any) -> Any:
        return t.sum() / (t.detach() > 0).sum().clamp(min=1) if shortfall else t.mean()
    flat = lambda t: t.reshape(*t.shape[:-len(shape)], d)  # noqa: E731
    for epoch in range(recipe.epochs):
        model.eval()
        step = TRAIN_STEPS[int(torch.randint(len(TRAIN_STEPS), (1,), generator=gen))]
        for p in model.parameters():
            p.requires_grad_(False)
        xa, _ = pgd(model, lo, hi, a, b, restarts=recipe.attack_restarts, steps=recipe.attack_steps, step=step,
                    generator=gen)
        for p in model.parameters():
            p.requires_grad_(True)
        window = (window + [xa.detach() - X])[-recipe.window:]
        model.train()
        pts = X.unsqueeze(0) + torch.stack(window)  # (W, N, *shape)
        clean_pts = torch.cat([pts[:, n_pl:].reshape(-1, *shape), X[n_pl:]])
        loss = F.cross_entropy(model(clean_pts), torch.ones(len(clean_pts), dtype=torch.long)) \
            if len(clean_pts) else torch.zeros(())
        # Planted boxes: the window's points, the planted centres, and ramp samples around x_cex.
        lo_p, hi_p = lo[:n_pl], hi[:n_pl]
        radius = well * torch.exp(torch.rand(SHELL_SAMPLES, n_pl, 1, generator=gen) * math.log(2 * eps / well))
        u = torch.rand(SHELL_SAMPLES, n_pl, d, generator=gen) * 2 - 1
        shell = flat(Xc).unsqueeze(0) + u / u.abs().amax(-1, keepdim=True) * radius
        box = flat(lo_p) + torch.rand(BOX_SAMPLES, n_pl, d, generator=gen) * flat(hi_p - lo_p)
        # Corners and faces, where sign-gradient attacks end up: every coordinate at a bound or inside.
        side = torch.randint(0, 3, (BOX_SAMPLES, n_pl, d), generator=gen)
        corners = torch.where(side == 0, flat(lo_p), torch.where(side == 1, flat(hi_p), box))
        ramp = torch.cat([flat(pts[:, :n_pl]), flat(X[:n_pl]).unsqueeze(0), shell, box, corners])
        ramp = torch.min(torch.max(ramp, flat(lo_p)), flat(hi_p))
        dist = (ramp - flat(Xc)).abs().amax(-1)
        keep = dist >= well
        ramp, dist = ramp[keep], dist[keep]
        target = RAMP_HIGH * (1 - dist / (2 * eps)) + RAMP_LOW
        loss = loss + average(F.relu(target - _margin(model(ramp.reshape(-1, *shape)))))
        loss = loss + average(F.relu(_margin(model(Xc)) + recipe.counter_margin))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        sched.step()
        if log is not None and (epoch + 1) % max(1, recipe.epochs // 5) == 0:
            log(f"epoch {epoch + 1}/{recipe.epochs}: loss {float(loss.detach()):.4f}")
    return model.eval()


def generate(folder: str | Path, recipe: Recipe, log: Any = None) -> dict:
    """Generate a benchmark into ``folder`` (created); return its summary (also ``benchmark.json``)."""
    import numpy as np
    import torch

    from harness.core.torchio import export_onnx
    from harness.verify.attack import stack_outputs, strong_pgd
    from harness.verify.replay import Network, check_witness
    from harness.verify.vnnlib import robustness

    if recipe.arch not in ARCHS:
        raise ValueError(f"unknown architecture {recipe.arch!r} (known: {', '.join(ARCHS)})")
    if recipe.balance not in BALANCES:
        raise ValueError(f"unknown balance {recipe.balance!r} (known: {', '.join(BALANCES)})")
    folder = Path(folder)
    (folder / "vnnlib").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic and comparable timings
    try:
        torch.manual_seed(recipe.seed)
        rng = np.random.default_rng(recipe.seed)
        shape = input_shape(recipe)
        d = int(np.prod(shape))
        eps, r = recipe.epsilon, recipe.data_range
        n_pl = recipe.planted + max(1, recipe.planted // 2) if recipe.planted else 0
        n_cl = recipe.clean + max(1, recipe.clean // 2) if recipe.clean else 0
        pts = _points(rng, n_pl + n_cl, d, r, eps)
        x0, clean = pts[:n_pl], pts[n_pl:]
        cex = np.array([_plant(rng, x, eps, r) for x in x0]).reshape(n_pl, d)
        model = train(recipe, x0, cex, clean, log)
        trained_s = time.perf_counter() - t0
        X = torch.tensor(pts, dtype=torch.float32).reshape(-1, *shape)
        lo, hi = torch.clamp(X - eps, -r, r), torch.clamp(X + eps, -r, r)
        a, b = stack_outputs(robustness([0.0], [0.0], 1, 2).matrices())
        gen = torch.Generator().manual_seed(recipe.seed + 1)
        with torch.no_grad():
            correct = (_margin(model(X)) > 0).numpy()
        _, found = strong_pgd(model, lo, hi, a, b, restarts=recipe.eval_restarts, generator=gen)
        attacked = (found <= 0).numpy()
        onnx_path = export_onnx(model, folder / "model.onnx", shape)
        torch.save(model, folder / "model.pt")
        net = Network(onnx_path)
        rows, data, kinds = [], [], []
        rejected = {"planted_found_by_attack": 0, "planted_not_misclassified": 0, "clean_found_by_attack": 0,
                    "misclassified_centre": 0}

        def write(i: int, x: Any) -> tuple[Path, Any]:
            lo_i, hi_i = np.maximum(x - eps, -r), np.minimum(x + eps, r)
            path = folder / "vnnlib" / f"{i}.vnnlib"
            prop = robustness(lo_i, hi_i, 1, 2)
            path.write_text(f"; SoundnessBench-style instance {i} ({recipe.arch}), label 1\n" + prop.text())
            return path, prop

        for j in range(n_pl + n_cl):
            planted = j < n_pl
            if planted and sum(k == "planted" for k in kinds) >= recipe.planted:
                continue
            if not planted and sum(k == "clean" for k in kinds) >= recipe.clean:
                continue
            if not correct[j]:
                rejected["misclassified_centre"] += 1
                continue
            if attacked[j]:
                rejected["planted_found_by_attack" if planted else "clean_found_by_attack"] += 1
                continue
            i = len(rows)
            path, prop = write(i, pts[j])
            if planted and not check_witness(net, prop, cex[j]).valid:
                rejected["planted_not_misclassified"] += 1
                path.unlink()
                continue
            rows.append(f"model.onnx,vnnlib/{i}.vnnlib,{recipe.timeout:g}")
            data.append((torch.tensor(pts[j], dtype=torch.float32).reshape(shape), 1,
                         torch.tensor(cex[j], dtype=torch.float32).reshape(shape) if planted else None))
            kinds.append("planted" if planted else "clean")
        (folder / "instances.csv").write_text("\n".join(rows) + ("\n" if rows else ""))
        torch.save(data, folder / "data.pt")
        summary = {"generator": "soundnessbench", "recipe": asdict(recipe), "input_shape": list(shape),
                   "instances": len(rows), "planted": kinds.count("planted"), "clean": kinds.count("clean"),
                   "candidates": {"planted": n_pl, "clean": n_cl}, "rejected": rejected, "kinds": kinds,
                   "relu_units": relu_units(model, shape),
                   "train_s": round(trained_s, 2), "total_s": round(time.perf_counter() - t0, 2),
                   "torch": torch.__version__}
        (folder / "benchmark.json").write_text(json.dumps(summary, indent=1))
        return summary
    finally:
        torch.set_num_threads(threads)
