"""Task metrics computed from a backend's outputs: top-k accuracy, perplexity, embedding agreement.

Pure numpy, so every backend is scored by the same code whatever runtime produced the outputs; and the one
loop that gathers those outputs batch by batch (:func:`batched_outputs`).
"""

from __future__ import annotations

from typing import Any

from harness.api import batch_len, take


def batched_outputs(session: Any, x: Any, bs: int) -> list:
    """The session's outputs for ``x`` (an array or a feed) in batches of ``bs``, as a list of arrays."""
    import numpy as np

    return [np.asarray(session.run(take(x, slice(start, start + bs)))) for start in range(0, batch_len(x), bs)]


def topk_correct(logits: Any, labels: Any, k: int) -> Any:
    """Per sample: whether the label is among the ``k`` largest logits (ties broken by index)."""
    import numpy as np

    logits = np.asarray(logits).reshape(len(logits), -1)
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return (top == np.asarray(labels)[:, None]).any(axis=1)


def next_token_nll(logits: Any, input_ids: Any, attention_mask: Any = None) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of each next token and how many were scored.

    ``logits`` ``(N, T, V)`` at position t predict ``input_ids[:, t + 1]``; positions whose target
    is padding (``attention_mask`` 0) are not scored.
    """
    import numpy as np

    logits = np.asarray(logits, dtype=np.float64)[:, :-1]
    target = np.asarray(input_ids)[:, 1:]
    keep = np.ones_like(target, dtype=bool) if attention_mask is None else np.asarray(attention_mask)[:, 1:] > 0
    peak = logits.max(axis=-1, keepdims=True)
    logz = np.log(np.exp(logits - peak).sum(axis=-1)) + peak[..., 0]
    picked = np.take_along_axis(logits, target[..., None], axis=-1)[..., 0]
    nll = (logz - picked)[keep]
    return float(nll.sum()), int(keep.sum())


def unit_rows(x: Any) -> Any:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def cosine_fidelity(emb: Any, dense: Any) -> Any:
    """Per sample: cosine similarity of an embedding with the dense model's embedding of the same text."""
    return (unit_rows(emb) * unit_rows(dense)).sum(axis=1)


def neighbours(emb: Any, k: int) -> Any:
    """Indices of each row's ``k`` nearest other rows by cosine similarity (itself excluded)."""
    import numpy as np

    u = unit_rows(emb)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    # A stable sort on (-similarity) breaks ties by index, so equal inputs give equal neighbours.
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def retrieval_agreement(emb: Any, dense: Any, k: int) -> Any:
    """Per sample: the share of its ``k`` nearest neighbours under the dense model kept under ``emb``."""
    import numpy as np

    a, b = neighbours(emb, k), neighbours(dense, k)
    return np.array([len(set(x) & set(y)) / k for x, y in zip(a, b)])
