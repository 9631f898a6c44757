"""A seeded, deterministic reference trainer for classifiers, for model plugins' ``train``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from harness.plugin.specs import Splits


@contextmanager
def deterministic(seed: int) -> Iterator[Any]:
    """One thread, deterministic algorithms, torch seeded; yields a seeded generator for the batches.
    The thread count and algorithm setting are restored on exit."""
    import torch

    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(prev_threads)


def train_classifier(module: Any, splits: Splits, *, seed: int, epochs: int = 30, lr: float = 1e-2,
                     batch_size: int = 64, weight_decay: float = 0.0,
                     after_step: Callable[[int], None] | None = None) -> dict:
    """Train ``module`` in place with Adam and cross-entropy on ``splits.train``.

    Deterministic for a given seed on CPU: torch is seeded, runs on one thread with
    deterministic algorithms, and the shuffling comes from a seeded generator.
    ``after_step(step)`` runs after every optimizer step (``step`` counts from 1), under
    ``torch.no_grad()``: fine-tuning a pruned model re-applies its mask there.
    Returns ``{"epochs", "steps", "train_loss", "test_top1"}`` for the record.
    """
    import numpy as np
    import torch

    with deterministic(seed) as gen:
        x = torch.from_numpy(np.ascontiguousarray(splits.train.x))
        y = torch.from_numpy(np.ascontiguousarray(splits.train.y)).long()
        opt = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
        loss_fn = torch.nn.CrossEntropyLoss()
        module.train()
        loss = torch.tensor(0.0)
        step = 0
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            for start in range(0, len(x), batch_size):
                idx = order[start:start + batch_size]
                opt.zero_grad()
                loss = loss_fn(module(x[idx]), y[idx])
                loss.backward()
                opt.step()
                step += 1
                if after_step is not None:
                    with torch.no_grad():
                        after_step(step)
        module.eval()
        with torch.no_grad():
            tx = torch.from_numpy(np.ascontiguousarray(splits.test.x))
            pred = module(tx).argmax(1).numpy()
        top1 = float((pred == splits.test.y).mean())
        return {"epochs": epochs, "steps": step, "train_loss": float(loss.item()), "test_top1": top1}


def train_causal_lm(module: Any, splits: Splits, *, seed: int, steps: int = 300, lr: float = 3e-3,
                    batch_size: int = 32, weight_decay: float = 0.0,
                    after_step: Callable[[int], None] | None = None) -> dict:
    """Train a causal LM in place with AdamW on next-token cross-entropy over ``splits.train``.

    ``module(input_ids) -> (N, T, vocab)`` logits; ``splits.train.x["input_ids"]`` holds fixed-length
    token windows. Deterministic for a seed on CPU (seeded batches, one thread, deterministic
    algorithms). ``after_step(step)`` runs after every optimizer step under ``torch.no_grad()``, as in
    :func:`train_classifier`. Returns ``{"steps", "train_loss", "test_perplexity"}`` for the record.
    """
    import math

    import numpy as np
    import torch

    with deterministic(seed) as gen:
        ids = torch.from_numpy(np.ascontiguousarray(splits.train.x["input_ids"], dtype=np.int64))
        opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
        module.train()
        loss = torch.tensor(0.0)
        for step in range(1, steps + 1):
            batch = ids[torch.randint(0, len(ids), (batch_size,), generator=gen)]
            logits = module(batch)
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                                     batch[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if after_step is not None:
                with torch.no_grad():
                    after_step(step)
        module.eval()
        with torch.no_grad():
            test = torch.from_numpy(np.ascontiguousarray(splits.test.x["input_ids"], dtype=np.int64))
            logits = module(test)
            nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                                    test[:, 1:].reshape(-1))
        return {"steps": steps, "train_loss": float(loss.item()), "test_perplexity": math.exp(float(nll))}
