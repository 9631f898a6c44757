"""GPU check: the harness's CUDA latency beside a bare CUDA-graph replay loop, ResNet-18.

Run on a CUDA machine with the harness and its plugins installed (under 5 minutes)::

    python bench/cuda_check.py            # prints a table; exit 0 when the target is met

It runs the harness's latency suite on ResNet-18 (defined in harness_plugins.nets, random
weights, 3x224x224) with ``torch-cuda`` at batch 1 and 64, fp32 and bf16, eager and graph modes,
and beside it a bare loop written from scratch: capture the model as a CUDA graph, 30 warm-up
replays, then 200 replays timed with CUDA events (one event pair per replay, as the reference
figures in FACTS.md were taken, and one pair per block of 20 replays, which removes the ~10 us
cost of an event pair), and four graphs on four inputs replayed in rotation, as the harness rotates
its input batches. TensorFloat-32 is off in both (the backend's ``tf32 = false`` default).
Target (issue 3): the harness's best-mode p50 at batch 1 within 5% of
the bare graph replay.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SUITE = """
name = "cuda-check"
[[matrix]]
models = ["resnet18"]
datasets = [{ name = "synthetic", shape = [3, 224, 224], num_classes = 1000, n = 128 }]
methods = ["dense"]
backends = [{ name = "torch-cuda", dtype = ["fp32", "bf16"], mode = ["eager", "graph"] }]
suites = ["latency"]
[settings.latency]
batch_sizes = [1, 64]
profile = "default"
"""


def bare_graph_replay(batch: int, dtype_name: str, graphs: int = 1) -> dict:
    """Median ms of a bare CUDA-graph replay of ResNet-18, per replay and per block of 20.

    With ``graphs`` > 1, that many graphs are captured on distinct inputs (one memory pool) and
    replayed in rotation, as the harness's graph mode does with its rotated input batches.
    TensorFloat-32 is off, as in the harness's fp32 default.
    """
    import torch

    from harness_plugins.nets import ResNet18

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    torch.manual_seed(0)
    model = ResNet18((3, 224, 224), 1000).cuda().to(dtype).eval()
    xs = [torch.randn(batch, 3, 224, 224, device="cuda", dtype=dtype) for _ in range(graphs)]
    with torch.inference_mode():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                model(xs[0])
        torch.cuda.current_stream().wait_stream(side)
        replays, pool = [], None
        for x in xs:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                model(x)
            pool = graph.pool()
            replays.append(graph.replay)
        for i in range(30):
            replays[i % graphs]()
        torch.cuda.synchronize()
        per_call = []
        for i in range(200):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            replays[i % graphs]()
            e.record()
            e.synchronize()
            per_call.append(s.elapsed_time(e))
        per_block = []
        for _ in range(20):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            for i in range(20):
                replays[i % graphs]()
            e.record()
            e.synchronize()
            per_block.append(s.elapsed_time(e) / 20)
    return {"per_replay_ms": statistics.median(per_call), "block_ms": statistics.median(per_block)}


def main() -> int:
    """Run the check and print the comparison; 0 when the batch-1 target is met, 1 when not."""
    try:
        import torch
    except ImportError:
        print("torch is not installed", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("no CUDA device: this check needs an NVIDIA GPU", file=sys.stderr)
        return 2
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "cuda.toml"
        suite.write_text(SUITE)
        db = Path(tmp) / "cuda.db"
        env = dict(os.environ, HARNESS_CACHE_DIR=str(Path(tmp) / "cache"))
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(suite), "--db", str(db), "-q"],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        conn = sqlite3.connect(db)
        rows = conn.execute("SELECT c.backend_params, m.params, m.value FROM measurements m JOIN cells c "
                            "ON c.id = m.cell_id WHERE m.metric = 'p50_ms'").fetchall()
    harness = {}
    for bparams, mparams, value in rows:
        b, m = json.loads(bparams), json.loads(mparams)
        harness[(b["dtype"], b["mode"], m["batch_size"])] = value
    print(f"{'dtype':6} {'batch':>5} {'eager p50':>10} {'graph p50':>10} {'bare replay':>12} "
          f"{'bare block':>11} {'bare 4-graph':>13} {'graph/bare':>11} {'graph/bare4':>12}")
    ok = True
    for dtype in ("fp32", "bf16"):
        for batch in (1, 64):
            bare = bare_graph_replay(batch, dtype)
            rotated = bare_graph_replay(batch, dtype, graphs=4)
            eager, graph = harness.get((dtype, "eager", batch)), harness.get((dtype, "graph", batch))
            best = min(v for v in (eager, graph) if v is not None)
            ratio = best / bare["block_ms"]
            if batch == 1 and ratio > 1.05:
                ok = False
            print(f"{dtype:6} {batch:>5} {eager:>10.4f} {graph:>10.4f} {bare['per_replay_ms']:>12.4f} "
                  f"{bare['block_ms']:>11.4f} {rotated['block_ms']:>13.4f} {ratio:>11.3f} "
                  f"{best / rotated['block_ms']:>12.3f}")
    print("target (batch 1, best mode within 5% of bare graph replay):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
