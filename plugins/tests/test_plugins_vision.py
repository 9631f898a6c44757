"""Image datasets from their distribution formats, written here (CIFAR-10 python and binary, MNIST
idx, gzipped or not, ImageNet-style folders), and the torchvision-compatible architectures."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from harness.api import DatasetContext, Skip
from harness_plugins.datasets import IMAGEFOLDER
from harness_plugins.vision import CIFAR10, MNIST, read_idx


def _load(spec, h, **params):
    return spec.load(DatasetContext(params=h.defaults(spec, **params), cache_dir=Path(".")))


def write_cifar(root: Path, binary: bool, per_batch: int = 12, seed: int = 0) -> dict:
    """Six CIFAR-10 batches of seeded images in the python (pickled dict) or binary record format."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).tolist()
        written[name] = (data, labels)
        if binary:
            rec = np.concatenate([np.array(labels, dtype=np.uint8)[:, None], data], axis=1)
            rec.tofile(root / f"{name}.bin")
        else:
            with open(root / name, "wb") as f:
                pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
    return written


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    """An unsigned-byte idx file (LeCun's format)."""
    head = b"\x00\x00\x08" + bytes([arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    data = head + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_mnist(root: Path, gz: bool, n_train: int = 30, n_test: int = 10) -> dict:
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test)}
    for name, arr in arrays.items():
        write_idx(root / name, arr, gz)
    return arrays


@pytest.mark.parametrize("binary", [False, True])
def test_cifar10_both_formats(tmp_path, h, binary):
    written = write_cifar(tmp_path / "c", binary)
    s = _load(CIFAR10, h, root=str(tmp_path / "c"), calibration=5, normalize=False)
    assert (len(s.train), len(s.calibration), len(s.test)) == (55, 5, 12)
    assert s.input_shape == (3, 32, 32) and s.num_classes == 10 and s.test.x.dtype == np.float32
    data, labels = written["test_batch"]
    # Row-major R, G, B planes of 32x32: the first test image's green plane, pixel (0, 1).
    assert s.test.x[0, 1, 0, 1] == pytest.approx(data[0, 1024 + 1] / 255)
    assert s.test.y.tolist() == labels
    assert s.calibration.y.tolist() == written["data_batch_1"][1][:5]
    normed = _load(CIFAR10, h, root=str(tmp_path / "c"), calibration=5)
    assert normed.test.x[0, 0, 0, 0] == pytest.approx((data[0, 0] / 255 - 0.4914) / 0.2470, rel=1e-5)


def test_cifar10_missing_is_a_skip_with_the_reason(tmp_path, h):
    with pytest.raises(Skip, match="no CIFAR-10 batches"):
        _load(CIFAR10, h, root=str(tmp_path))


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx(tmp_path, h, gz):
    arrays = write_mnist(tmp_path / "m", gz)
    s = _load(MNIST, h, root=str(tmp_path / "m"), calibration=4, normalize=False)
    assert s.input_shape == (1, 28, 28) and (len(s.train), len(s.calibration), len(s.test)) == (26, 4, 10)
    assert np.allclose(s.test.x[:, 0] * 255, arrays["t10k-images-idx3-ubyte"], atol=1e-3)
    assert s.test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    suffix = ".gz" if gz else ""
    assert read_idx(tmp_path / "m" / f"t10k-labels-idx1-ubyte{suffix}").shape == (10,)


def test_imagefolder_imagenet_preprocessing(tmp_path, h):
    """Shorter side resized, centre crop, ImageNet normalisation: a wide image's centre survives."""
    from PIL import Image

    for cls in ("a", "b"):
        for i in range(5):
            img = np.zeros((40, 80, 3), dtype=np.uint8)
            img[:, 30:50] = 255  # a white vertical band in the centre
            (tmp_path / "root" / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(tmp_path / "root" / cls / f"{i}.png")
    s = _load(IMAGEFOLDER, h, root=str(tmp_path / "root"), size=[16, 16], resize=20, normalize="imagenet")
    x = s.test.x[0]
    assert x.shape == (3, 16, 16)
    # Resized to 20x40, cropped to columns 12..28: the band (15..25) spans columns 3..13 of the crop.
    white = (1 - 0.485) / 0.229
    assert x[0, 8, 8] == pytest.approx(white, abs=0.05)
    assert x[0, 8, 0] == pytest.approx(-0.485 / 0.229, abs=0.05)


@pytest.mark.parametrize("name,params", [("resnet50", 25557032), ("mobilenet_v2", 3504872)])
def test_torchvision_architectures_load_state_dict_files(tmp_path, h, name, params):
    """The parameter counts of torchvision's models, and a saved state_dict loads by name."""
    import torch

    from harness.api import ModelContext
    from harness_plugins.models import MOBILENET_V2, RESNET50

    spec = {"resnet50": RESNET50, "mobilenet_v2": MOBILENET_V2}[name]
    ctx = ModelContext(params={}, input_shape=(3, 224, 224), num_classes=1000, seed=0)
    torch.manual_seed(0)
    a = spec.build(ctx)
    assert sum(p.numel() for p in a.parameters()) == params
    torch.save(a.state_dict(), tmp_path / "w.pt")
    torch.manual_seed(1)
    b = spec.build(ctx)
    b.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(a.eval()(x), b.eval()(x))
    keys = set(a.state_dict())
    assert ("layer4.2.conv3.weight" in keys) if name == "resnet50" else ("features.18.0.weight" in keys
                                                                         and "classifier.1.weight" in keys)


def test_suite_on_written_cifar_and_mnist_files(tmp_path, harness_cli, suite_file):
    """A real run on CIFAR-10 binary files and gzipped MNIST idx files: top1 and top5 recorded."""
    write_cifar(tmp_path / "cifar", binary=True, per_batch=40)
    write_mnist(tmp_path / "mnist", gz=True, n_train=120, n_test=40)
    (tmp_path / "nothing").mkdir()  # a folder without batches (a missing one is the suite file's error)
    suite = suite_file(f"""
        name = "vision-files"
        seeds = [0]
        [[matrix]]
        models = [{{ name = "mlp", hidden = 16 }}]
        datasets = [{{ name = "cifar10", root = "{tmp_path / 'cifar'}", calibration = 10 }},
                    {{ name = "mnist", root = "{tmp_path / 'mnist'}", calibration = 10 }},
                    {{ name = "cifar10", root = "{tmp_path / 'nothing'}" }}]
        methods = [{{ name = "dense" }}]
        backends = ["onnxruntime-cpu"]
        suites = ["accuracy"]
    """)
    db = tmp_path / "lb.db"
    proc = harness_cli("run", suite, "--db", db)
    assert proc.returncode == 0, proc.stderr
    import sqlite3

    conn = sqlite3.connect(db)
    got = conn.execute("SELECT c.dataset_params, m.metric, m.value FROM measurements m JOIN cells c "
                       "ON m.cell_id = c.id").fetchall()
    skipped = conn.execute("SELECT reason FROM cells WHERE status = 'skipped'").fetchall()
    metrics = {(json.loads(p)["root"].rsplit("/", 1)[-1], m): v for p, m, v in got}
    for ds in ("cifar", "mnist"):
        assert 0.0 <= metrics[(ds, "top1")] <= metrics[(ds, "top5")] <= 1.0
    assert len(skipped) == 1 and "no CIFAR-10 batches" in skipped[0][0]


class _RunsCode:
    """A pickled object whose loading would call ``marker.write_text``: what a crafted batch does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def test_a_crafted_cifar_python_batch_runs_no_code(tmp_path):
    write_cifar(tmp_path / "cifar", binary=False)
    marker = tmp_path / "ran.txt"
    with open(tmp_path / "cifar" / "data_batch_1", "wb") as f:
        pickle.dump({b"data": _RunsCode(marker), b"labels": [0]}, f)
    with pytest.raises(pickle.UnpicklingError, match=r"asks to load pathlib\..*write_text.*refused"):
        CIFAR10.load(DatasetContext(params={"root": str(tmp_path / "cifar"), "calibration": 10},
                                    cache_dir=tmp_path / "cache"))
    assert not marker.exists()
