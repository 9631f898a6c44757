"""Dataset plugins: fixed digits splits, seeded synthetic data, and imagefolder layouts and errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.api import DatasetContext
from harness_plugins.datasets import DIGITS, IMAGEFOLDER, SYNTHETIC


def _load(spec, h, tmp_path=Path("."), **params):
    return spec.load(DatasetContext(params=h.defaults(spec, **params), cache_dir=tmp_path))


# --------------------------------------------------------------------------- digits


def test_digits_fixed_splits(digits):
    """360 test, 100 calibration, the rest train; float32 in [0, 1] shaped (N, 1, 8, 8)."""
    import numpy as np

    assert (len(digits.train), len(digits.calibration), len(digits.test)) == (1337, 100, 360)
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10 and digits.labelled
    for split in (digits.train, digits.calibration, digits.test):
        assert split.x.dtype == np.float32 and split.x.shape[1:] == (1, 8, 8)
        assert split.y.dtype == np.int64
        assert split.x.min() >= 0.0 and split.x.max() <= 1.0
    assert set(np.unique(digits.test.y)) == set(range(10))


def test_digits_deterministic(digits, h):
    """A second load gives the same arrays and the same fingerprint."""
    import numpy as np

    again = _load(DIGITS, h)
    assert again.fingerprint == digits.fingerprint and len(digits.fingerprint) == 64
    assert np.array_equal(again.test.x, digits.test.x) and np.array_equal(again.train.y, digits.train.y)


def test_fingerprint_sees_layout():
    """The fingerprint covers dtype and shape, not only the raw bytes."""
    import numpy as np

    from harness.api import fingerprint_arrays

    a = np.arange(6, dtype=np.float32)
    assert fingerprint_arrays(a) == fingerprint_arrays(a.copy())
    assert fingerprint_arrays(a) != fingerprint_arrays(a.reshape(2, 3))
    assert fingerprint_arrays(a, None) != fingerprint_arrays(a)
    # a feed of named arrays: by name, whatever the dict's order, and the names count
    ids, mask = np.arange(6).reshape(2, 3), np.ones((2, 3), dtype=np.int64)
    assert fingerprint_arrays({"input_ids": ids, "attention_mask": mask}) == \
        fingerprint_arrays({"attention_mask": mask, "input_ids": ids})
    assert fingerprint_arrays({"input_ids": ids}) != fingerprint_arrays({"tokens": ids})


# --------------------------------------------------------------------------- synthetic


def test_synthetic_is_seeded_and_unlabelled(h):
    """Latency-only data: labelled False, shaped as asked, the same for the same data_seed."""
    import numpy as np

    a = _load(SYNTHETIC, h, shape=[3, 4, 5], n=7, num_classes=4)
    b = _load(SYNTHETIC, h, shape=[3, 4, 5], n=7, num_classes=4)
    c = _load(SYNTHETIC, h, shape=[3, 4, 5], n=7, num_classes=4, data_seed=1)
    assert a.labelled is False and a.input_shape == (3, 4, 5) and a.num_classes == 4
    for split in (a.train, a.calibration, a.test):
        assert split.x.shape == (7, 3, 4, 5) and split.x.dtype == np.float32
        assert split.y.min() >= 0 and split.y.max() < 4
    assert np.array_equal(a.test.x, b.test.x) and a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint
    assert not np.array_equal(a.train.x, a.test.x)


def test_synthetic_defaults(h):
    """Defaults: (1, 8, 8), 10 classes, 256 samples per split."""
    s = _load(SYNTHETIC, h)
    assert s.input_shape == (1, 8, 8) and s.num_classes == 10 and len(s.test) == 256


# --------------------------------------------------------------------------- imagefolder

COLORS = {"cat": (255, 0, 0), "dog": (0, 0, 255), "eel": (0, 255, 0)}


def _write_class(folder: Path, color, count: int, start: int = 0) -> None:
    """``count`` solid-colour images of mixed formats and modes in ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    kinds = [("png", "RGB"), ("jpg", "RGB"), ("bmp", "RGB"), ("png", "RGBA"), ("jpeg", "RGB")]
    for i in range(start, start + count):
        ext, mode = kinds[i % len(kinds)]
        fill = color + (255,) if mode == "RGBA" else color
        Image.new(mode, (10, 12), fill).save(folder / f"img{i:03d}.{ext}")


@pytest.fixture
def flat_root(tmp_path):
    """root/CLASS/*: three classes of 10 images, plus a stray non-image file."""
    root = tmp_path / "flat"
    for name, color in COLORS.items():
        _write_class(root / name, color, 10)
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


def test_imagefolder_flat_layout(flat_root, h):
    """Sorted class names give the labels; pixels land in (N, C, H, W) in [0, 1]; split per class."""
    import numpy as np

    s = _load(IMAGEFOLDER, h, root=str(flat_root), size=[8, 6])
    assert s.num_classes == 3 and s.input_shape == (3, 8, 6) and s.labelled
    # Per class: round(10 * 0.2) = 2 test, round(10 * 0.1) = 1 calibration, 7 train.
    assert (len(s.train), len(s.calibration), len(s.test)) == (21, 3, 6)
    for split in (s.train, s.calibration, s.test):
        assert split.x.shape[1:] == (3, 8, 6) and split.x.dtype == np.float32
        assert np.bincount(split.y, minlength=3).tolist() == [len(split) // 3] * 3
    # cat (label 0) is pure red: channel 0 is 1 and the others 0 (JPEG is lossy: a tolerance).
    cats = s.train.x[s.train.y == 0]
    assert np.allclose(cats[:, 0], 1.0, atol=0.05) and np.allclose(cats[:, 1:], 0.0, atol=0.05)
    eels = s.test.x[s.test.y == 2]
    assert np.allclose(eels[:, 1], 1.0, atol=0.05)


def test_imagefolder_deterministic_and_seeded(flat_root, h):
    """The same parameters give the same fingerprint; another split_seed another split."""
    a = _load(IMAGEFOLDER, h, root=str(flat_root), size=[8, 8])
    b = _load(IMAGEFOLDER, h, root=str(flat_root), size=[8, 8])
    c = _load(IMAGEFOLDER, h, root=str(flat_root), size=[8, 8], split_seed=1)
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint


def test_imagefolder_grayscale_default_size(flat_root, h):
    """grayscale gives one channel; the default size is 32x32."""
    s = _load(IMAGEFOLDER, h, root=str(flat_root), grayscale=True)
    assert s.input_shape == (1, 32, 32) and s.train.x.shape[1:] == (1, 32, 32)


def test_imagefolder_train_test_layout(tmp_path, h):
    """root/train and root/test: the test folder is the test split, calibration comes from train."""
    import numpy as np

    root = tmp_path / "tt"
    for name, color in COLORS.items():
        _write_class(root / "train" / name, color, 10)
        _write_class(root / "test" / name, color, 3, start=50)
    s = _load(IMAGEFOLDER, h, root=str(root), size=[4, 4])
    assert s.num_classes == 3
    assert (len(s.train), len(s.calibration), len(s.test)) == (27, 3, 9)
    assert np.bincount(s.test.y).tolist() == [3, 3, 3]


def _raises(root: Path, what: str):
    return pytest.raises(ValueError, match=re.escape(str(root)) + ".*" + re.escape(what))


def test_imagefolder_missing_root(tmp_path, h):
    """A missing root is named in the error."""
    root = tmp_path / "nope"
    with _raises(root, "does not exist"):
        _load(IMAGEFOLDER, h, root=str(root))


def test_imagefolder_no_class_folders(tmp_path, h):
    """A root without class folders is an error naming it."""
    root = tmp_path / "empty"
    root.mkdir()
    (root / "loose.png").write_bytes(b"")
    with _raises(root, "no class folders"):
        _load(IMAGEFOLDER, h, root=str(root))


def test_imagefolder_class_without_images(flat_root, h):
    """A class folder with no images is an error naming the root and the folder."""
    (flat_root / "fox").mkdir()
    (flat_root / "fox" / "readme.txt").write_text("x")
    with _raises(flat_root, "fox has no images"):
        _load(IMAGEFOLDER, h, root=str(flat_root))


def test_imagefolder_unreadable_image(flat_root, h):
    """An image that does not decode is an error naming the file."""
    bad = flat_root / "dog" / "broken.png"
    bad.write_bytes(b"this is not a png")
    with _raises(flat_root, f"cannot read image {bad}"):
        _load(IMAGEFOLDER, h, root=str(flat_root))


def test_imagefolder_mismatched_classes(tmp_path, h):
    """train/ and test/ with different class folders is an error naming both lists."""
    root = tmp_path / "mm"
    _write_class(root / "train" / "cat", COLORS["cat"], 2)
    _write_class(root / "train" / "dog", COLORS["dog"], 2)
    _write_class(root / "test" / "cat", COLORS["cat"], 2)
    with _raises(root, "differ"):
        _load(IMAGEFOLDER, h, root=str(root))


def test_imagefolder_too_few_images(tmp_path, h):
    """With one image per class nothing can be held out for test: a clear error."""
    root = tmp_path / "tiny"
    _write_class(root / "cat", COLORS["cat"], 1)
    with _raises(root, "too few images"):
        _load(IMAGEFOLDER, h, root=str(root))
