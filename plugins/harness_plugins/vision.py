"""Standard image datasets from their distribution files on disk: ``cifar10`` and ``mnist``.

Nothing is downloaded: point ``root`` at the folder holding the files as their authors ship them.
CIFAR-10: the python version (``data_batch_1`` ... ``data_batch_5``, ``test_batch``, pickled dicts)
or the binary version (``data_batch_1.bin`` ..., ``test_batch.bin``, records of 1 label byte and
3072 pixel bytes). MNIST: the idx files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), optionally gzipped (``.gz``). Pixels are
scaled to [0, 1] and normalised with the dataset's customary per-channel mean and std
(``normalize = false`` keeps [0, 1]). When the files are missing, cells are skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.api import DatasetContext, DatasetSpec, Param, Skip, Split, Splits, fingerprint_splits, hookimpl

#: Customary per-channel normalisation constants.
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
MNIST_FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
               "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}


def normalise(x: Any, mean: tuple[float, ...], std: tuple[float, ...]) -> Any:
    """``(x - mean) / std`` per channel of ``(N, C, H, W)`` float32 images."""
    import numpy as np

    m = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray((x - m) / s, dtype=np.float32)


def make_splits(train_x: Any, train_y: Any, test_x: Any, test_y: Any, calibration: int, num_classes: int) -> Splits:
    """Splits with the first ``calibration`` training images held out for calibration."""
    import numpy as np

    parts = {"train": (train_x[calibration:], train_y[calibration:]),
             "calibration": (train_x[:calibration], train_y[:calibration]), "test": (test_x, test_y)}
    splits = {k: Split(x=np.ascontiguousarray(x), y=np.ascontiguousarray(y, dtype=np.int64))
              for k, (x, y) in parts.items()}
    return Splits(train=splits["train"], calibration=splits["calibration"], test=splits["test"],
                  input_shape=tuple(test_x.shape[1:]), num_classes=num_classes, labelled=True,
                  fingerprint=fingerprint_splits(splits))


# --------------------------------------------------------------------------- CIFAR-10


#: The only globals a CIFAR-10 python batch needs: its ``data`` is a pickled numpy array.
_CIFAR_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy", "ndarray"), ("numpy", "dtype")}


def _cifar_unpickler(f: Any, path: Path) -> Any:
    """A pickle reader that builds only what the format holds: a dict of bytes, lists and numpy arrays.

    A python batch is a pickle, and a plain ``pickle.load`` runs whatever a crafted file asks for;
    this reader refuses every other global, so a downloaded batch can never run code.
    """
    import pickle

    class Restricted(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in _CIFAR_GLOBALS:
                return super().find_class(module, name)
            raise pickle.UnpicklingError(
                f"cifar10: {path} asks to load {module}.{name}, which a CIFAR-10 python batch never holds "
                "(only a dict of bytes, lists and numpy arrays); refused. Use the binary version "
                "(data_batch_1.bin ...) if the file is not the original")

    return Restricted(f, encoding="bytes")


def read_cifar_python(path: Path) -> tuple[Any, Any]:
    """One python-version batch: ``(N, 3, 32, 32)`` uint8 images and int64 labels, read without
    running code (:func:`_cifar_unpickler`)."""
    import numpy as np

    with open(path, "rb") as f:
        batch = _cifar_unpickler(f, path).load()
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"cifar10: {path} is not a CIFAR-10 python batch (a dict with data and labels)")
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, np.asarray(batch[b"labels"], dtype=np.int64)


def read_cifar_binary(path: Path) -> tuple[Any, Any]:
    """One binary-version batch: records of 1 label byte then 3072 pixel bytes (R, G, B planes)."""
    import numpy as np

    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise ValueError(f"cifar10: {path} is not a CIFAR-10 binary batch ({raw.size} bytes)")
    rec = raw.reshape(-1, 3073)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def load_cifar10(ctx: DatasetContext) -> Splits:
    """CIFAR-10 from ``root`` (python or binary version), test from ``test_batch``."""
    import numpy as np

    root = Path(ctx.params["root"]).expanduser()
    candidates = [root, root / "cifar-10-batches-py", root / "cifar-10-batches-bin"]
    for folder in candidates:
        if all((folder / n).is_file() for n in (*CIFAR_TRAIN, "test_batch")):
            read, suffix = read_cifar_python, ""
            break
        if all((folder / f"{n}.bin").is_file() for n in (*CIFAR_TRAIN, "test_batch")):
            read, suffix = read_cifar_binary, ".bin"
            break
    else:
        raise Skip(f"cifar10: no CIFAR-10 batches under {root} (data_batch_1..5 and test_batch, python or .bin "
                   "version); download them from https://www.cs.toronto.edu/~kriz/cifar.html")
    train = [read(folder / f"{n}{suffix}") for n in CIFAR_TRAIN]
    tx, ty = read(folder / f"test_batch{suffix}")
    n_train, n_test = ctx.params["max_train"], ctx.params["max_test"]
    xtr = np.concatenate([x for x, _ in train])[: n_train or None]
    ytr = np.concatenate([y for _, y in train])[: n_train or None]
    tx, ty = tx[: n_test or None], ty[: n_test or None]
    scale = (lambda a: normalise(a.astype(np.float32) / 255, CIFAR10_MEAN, CIFAR10_STD)) if ctx.params["normalize"] \
        else (lambda a: np.ascontiguousarray(a.astype(np.float32) / 255))
    return make_splits(scale(xtr), ytr, scale(tx), ty, min(ctx.params["calibration"], len(xtr) - 1), 10)


# --------------------------------------------------------------------------- MNIST


def read_idx(path: Path) -> Any:
    """An idx file (LeCun's format: zero bytes, a type code, the rank, big-endian dims, data), gzipped or not."""
    import gzip

    import numpy as np

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"mnist: {path} is not an unsigned-byte idx file")
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def _find(root: Path, name: str) -> Path | None:
    for cand in (root / name, root / f"{name}.gz", root / name.replace("-idx", ".idx"),
                 root / (name.replace("-idx", ".idx") + ".gz")):
        if cand.is_file():
            return cand
    return None


def load_mnist(ctx: DatasetContext) -> Splits:
    """MNIST (or Fashion-MNIST, same files) from the idx files under ``root``: ``(N, 1, 28, 28)``."""
    import numpy as np

    root = Path(ctx.params["root"]).expanduser()
    found = {k: _find(root, n) for k, n in MNIST_FILES.items()}
    missing = [MNIST_FILES[k] for k, v in found.items() if v is None]
    if missing:
        raise Skip(f"mnist: missing under {root}: {', '.join(missing)} (idx files, optionally .gz)")
    arrays = {k: read_idx(v) for k, v in found.items()}
    n_train, n_test = ctx.params["max_train"], ctx.params["max_test"]

    def images(a: Any) -> Any:
        x = a.astype(np.float32)[:, None] / 255
        return normalise(x, MNIST_MEAN, MNIST_STD) if ctx.params["normalize"] else np.ascontiguousarray(x)

    xtr, ytr = images(arrays["train_x"][: n_train or None]), arrays["train_y"][: n_train or None].astype(np.int64)
    tx, ty = images(arrays["test_x"][: n_test or None]), arrays["test_y"][: n_test or None].astype(np.int64)
    return make_splits(xtr, ytr, tx, ty, min(ctx.params["calibration"], len(xtr) - 1), 10)


def _common(root_default: str) -> tuple[Param, ...]:
    return (
        Param("root", str, default=root_default, path="folder", help="folder holding the files as distributed"),
        Param("normalize", bool, default=True, help="per-channel mean/std normalisation (else [0, 1])"),
        Param("max_train", int, default=0, min=0, help="use at most this many training images (0: all)"),
        Param("max_test", int, default=0, min=0, help="use at most this many test images (0: all)"),
        Param("calibration", int, default=500, min=1, help="training images held out for calibration"),
    )


CIFAR10 = DatasetSpec(
    name="cifar10", load=load_cifar10, params=_common("~/data/cifar-10-batches-py"),
    description="CIFAR-10 from its python or binary batches on disk (32x32 RGB, 10 classes)",
)

MNIST = DatasetSpec(
    name="mnist", load=load_mnist, params=_common("~/data/mnist"),
    description="MNIST from its idx files on disk, optionally gzipped (28x28 grey, 10 classes)",
)


@hookimpl
def harness_register_datasets(register):
    """Register ``cifar10`` and ``mnist``."""
    for spec in (CIFAR10, MNIST):
        register(spec)
