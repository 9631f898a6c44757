"""Datasets: ``digits`` (scikit-learn's 8x8 digits), ``synthetic`` (seeded noise) and ``imagefolder``.

Every ``load`` is deterministic: the same parameters give the same splits and the same
fingerprint on every call, whatever the run's seed, so cache keys built from them are stable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.api import DatasetContext, DatasetSpec, Param, Split, Splits, fingerprint_splits, hookimpl

#: The digits split is fixed once and for all, independent of any run seed, so that every
#: model, method and seed is scored on the same test images.
DIGITS_SPLIT_SEED = 20240101
DIGITS_TEST = 360
DIGITS_CALIBRATION = 100

#: Image files ``imagefolder`` reads (matched case-insensitively).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


# --------------------------------------------------------------------------- digits


def load_digits(ctx: DatasetContext) -> Splits:
    """scikit-learn's 1797 8x8 digit images, scaled to [0, 1], shaped ``(N, 1, 8, 8)``.

    Fixed splits: a constant-seed permutation gives 360 test, 100 calibration and 1337
    train samples.
    """
    import numpy as np
    from sklearn.datasets import load_digits as sk_load_digits

    # The data ships inside scikit-learn: nothing is downloaded.
    bunch = sk_load_digits()
    x = (bunch.images.astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(x))
    test = order[:DIGITS_TEST]
    cal = order[DIGITS_TEST:DIGITS_TEST + DIGITS_CALIBRATION]
    train = order[DIGITS_TEST + DIGITS_CALIBRATION:]
    splits = {name: Split(x=np.ascontiguousarray(x[idx]), y=np.ascontiguousarray(y[idx]))
              for name, idx in (("train", train), ("calibration", cal), ("test", test))}
    return Splits(
        train=splits["train"], calibration=splits["calibration"], test=splits["test"],
        input_shape=(1, 8, 8), num_classes=10, labelled=True,
        fingerprint=fingerprint_splits(splits),
    )


# --------------------------------------------------------------------------- synthetic


def load_synthetic(ctx: DatasetContext) -> Splits:
    """Seeded standard-normal inputs with random labels, for latency-only runs (``labelled=False``).

    ``n`` samples in each split, all drawn from one generator seeded with ``data_seed``.
    """
    import numpy as np

    shape = tuple(int(v) for v in ctx.params["shape"])
    if not shape:
        raise ValueError("synthetic: shape must have at least one dimension")
    num_classes = int(ctx.params["num_classes"])
    n = int(ctx.params["n"])
    rng = np.random.default_rng(int(ctx.params["data_seed"]))
    splits = {}
    for name in ("train", "calibration", "test"):
        x = rng.standard_normal((n, *shape), dtype=np.float32)
        y = rng.integers(0, num_classes, size=n, dtype=np.int64)
        splits[name] = Split(x=x, y=y)
    return Splits(
        train=splits["train"], calibration=splits["calibration"], test=splits["test"],
        input_shape=shape, num_classes=num_classes, labelled=False,
        fingerprint=fingerprint_splits(splits),
    )


# --------------------------------------------------------------------------- imagefolder


def _class_dirs(root: Path, where: Path) -> list[Path]:
    """The class folders under ``where``, sorted by name (hidden folders skipped)."""
    dirs = sorted((p for p in where.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)
    if not dirs:
        raise ValueError(f"imagefolder {root}: no class folders under {where}")
    return dirs


def _image_files(root: Path, class_dir: Path) -> list[Path]:
    """The image files of one class folder, sorted by name; error when there are none."""
    files = sorted((p for p in class_dir.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.name)
    if not files:
        raise ValueError(f"imagefolder {root}: class folder {class_dir} has no images "
                         f"({', '.join(IMAGE_SUFFIXES)})")
    return files


#: ImageNet's per-channel normalisation (torchvision's pretrained models expect it).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _read_images(root: Path, files: list[Path], size: tuple[int, int], grayscale: bool,
                 resize: int = 0) -> Any:
    """Decode and convert ``files`` into a float32 array ``(N, C, H, W)`` in [0, 1].

    ``resize`` 0: each image is resized to ``size`` (bilinear). ``resize`` > 0: ImageNet-style, the
    shorter side is resized to ``resize`` (bilinear, aspect kept) and the centre ``size`` cropped.
    """
    import numpy as np
    from PIL import Image

    h, w = size
    out = np.empty((len(files), 1 if grayscale else 3, h, w), dtype=np.float32)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as img:
                img = img.convert("L" if grayscale else "RGB")
                if resize:
                    scale = resize / min(img.size)
                    img = img.resize((max(w, round(img.size[0] * scale)), max(h, round(img.size[1] * scale))),
                                     Image.Resampling.BILINEAR)
                    left, top = (img.size[0] - w) // 2, (img.size[1] - h) // 2
                    img = img.crop((left, top, left + w, top + h))
                else:
                    # PIL sizes are (width, height).
                    img = img.resize((w, h), Image.Resampling.BILINEAR)
                arr = np.asarray(img, dtype=np.float32) / np.float32(255.0)
        # UnidentifiedImageError and truncated files are OSErrors; bad modes are ValueErrors.
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise ValueError(f"imagefolder {root}: cannot read image {f}: {e}") from e
        out[i] = arr[None] if grayscale else arr.transpose(2, 0, 1)
    return out


def _normalise(x: Any, how: str) -> Any:
    """Per-channel normalisation: ``none`` keeps [0, 1], ``imagenet`` uses ImageNet's mean and std."""
    if how == "none":
        return x
    from harness_plugins.vision import normalise

    channels = x.shape[1]
    mean, std = IMAGENET_MEAN[:channels], IMAGENET_STD[:channels]
    if channels == 1:  # grey images: the mean of the RGB constants
        mean, std = (sum(IMAGENET_MEAN) / 3,), (sum(IMAGENET_STD) / 3,)
    return normalise(x, mean, std)


def _collect(root: Path, where: Path, classes: list[str] | None) -> tuple[list[str], list[Path], list[int]]:
    """Files and labels under ``where``; ``classes`` (when given) must match its class folders."""
    dirs = _class_dirs(root, where)
    names = [d.name for d in dirs]
    if classes is not None and names != classes:
        raise ValueError(f"imagefolder {root}: the class folders of {where} ({', '.join(names)}) differ "
                         f"from those of the train folder ({', '.join(classes)})")
    files: list[Path] = []
    labels: list[int] = []
    for label, d in enumerate(dirs):
        fs = _image_files(root, d)
        files += fs
        labels += [label] * len(fs)
    return names, files, labels


def _stratified_split(labels: Any, fractions: tuple[float, ...], seed: int) -> list[Any]:
    """Split sample indices per class by ``fractions`` (the rest goes to the last part).

    Per-class splitting keeps every class represented in each part when it has enough
    images; each class keeps at least one sample in the remainder (train).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    parts: list[list[Any]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        counts = [int(round(len(idx) * f)) for f in fractions]
        # Give back samples (latest part first) until the remainder keeps one.
        for j in reversed(range(len(counts))):
            while counts[j] > 0 and sum(counts) >= len(idx):
                counts[j] -= 1
        start = 0
        for j, k in enumerate(counts):
            parts[j].append(idx[start:start + k])
            start += k
        parts[-1].append(idx[start:])
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64) for p in parts]


def load_imagefolder(ctx: DatasetContext) -> Splits:
    """Images under ``root/CLASS/*`` (or ``root/train/CLASS/*`` and ``root/test/CLASS/*``).

    Classes are the sorted folder names (label = index). Images are converted to RGB (or
    grayscale), resized to ``size`` = [height, width] with bilinear filtering and scaled to
    [0, 1]. With one folder, test and calibration are drawn per class with ``split_seed``;
    with ``train``/``test`` folders, calibration is drawn from train.
    """
    import numpy as np

    p = ctx.params
    root = Path(p["root"]).expanduser()
    size = tuple(int(v) for v in p["size"])
    if len(size) != 2:
        raise ValueError(f"imagefolder {root}: size must be [height, width], got {list(p['size'])}")
    test_fraction = float(p["test_fraction"])
    cal_fraction = float(p["calibration_fraction"])
    seed = int(p["split_seed"])
    if not root.is_dir():
        raise ValueError(f"imagefolder {root}: root folder does not exist or is not a folder")

    if (root / "train").is_dir() and (root / "test").is_dir():
        classes, train_files, train_labels = _collect(root, root / "train", None)
        _, test_files, test_labels = _collect(root, root / "test", classes)
        ytr = np.asarray(train_labels, dtype=np.int64)
        cal_idx, train_idx = _stratified_split(ytr, (cal_fraction,), seed)
        xtr = _normalise(_read_images(root, train_files, size, p["grayscale"], p["resize"]), p["normalize"])
        x_test = _normalise(_read_images(root, test_files, size, p["grayscale"], p["resize"]), p["normalize"])
        parts = {"train": (xtr[train_idx], ytr[train_idx]), "calibration": (xtr[cal_idx], ytr[cal_idx]),
                 "test": (x_test, np.asarray(test_labels, dtype=np.int64))}
    else:
        if test_fraction + cal_fraction >= 1.0:
            raise ValueError(f"imagefolder {root}: test_fraction + calibration_fraction must be below 1")
        classes, files, labels = _collect(root, root, None)
        y = np.asarray(labels, dtype=np.int64)
        test_idx, cal_idx, train_idx = _stratified_split(y, (test_fraction, cal_fraction), seed)
        x = _normalise(_read_images(root, files, size, p["grayscale"], p["resize"]), p["normalize"])
        parts = {"train": (x[train_idx], y[train_idx]), "calibration": (x[cal_idx], y[cal_idx]),
                 "test": (x[test_idx], y[test_idx])}
    if len(parts["test"][0]) == 0:
        raise ValueError(f"imagefolder {root}: too few images to hold out a test split "
                         f"(test_fraction={test_fraction})")
    splits = {k: Split(x=np.ascontiguousarray(a), y=np.ascontiguousarray(b)) for k, (a, b) in parts.items()}
    c = 1 if p["grayscale"] else 3
    return Splits(
        train=splits["train"], calibration=splits["calibration"], test=splits["test"],
        input_shape=(c, *size), num_classes=len(classes), labelled=True,
        fingerprint=fingerprint_splits(splits),
    )


def imagefolder_example(workdir: Path) -> dict:
    """A small image folder for ``harness check-plugin``: 3 classes of 10 seeded 8x8 PNGs.

    Returns the parameters that load it (``root`` and a grayscale 8x8 size).
    """
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    root = Path(workdir) / "images"
    for c in range(3):
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(10):
            # Each class has its own brightness, so the images are learnable as well as readable.
            pixels = np.clip(rng.normal(60 + 70 * c, 20, size=(8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return {"root": str(root), "size": [8, 8], "grayscale": True}


# --------------------------------------------------------------------------- registration

DIGITS = DatasetSpec(
    name="digits", load=load_digits,
    description="scikit-learn's 1797 8x8 handwritten digits (10 classes); fixed 1337/100/360 "
                "train/calibration/test split",
)

SYNTHETIC = DatasetSpec(
    name="synthetic", load=load_synthetic,
    params=(
        Param("shape", list, default=[1, 8, 8], item_type=int, min=1, help="one sample's shape"),
        Param("num_classes", int, default=10, min=1, help="number of classes (model output size)"),
        Param("n", int, default=256, min=1, help="samples per split"),
        Param("data_seed", int, default=0, help="seed of the generator"),
    ),
    description="seeded standard-normal inputs with random labels; latency only (unlabelled)",
)

IMAGEFOLDER = DatasetSpec(
    name="imagefolder", load=load_imagefolder,
    params=(
        Param("root", str, path="folder",
              help="folder of class folders, or of train/ and test/ folders of class folders"),
        Param("size", list, default=[32, 32], item_type=int, min=1, help="[height, width] to resize to"),
        Param("grayscale", bool, default=False, help="convert to one channel instead of RGB"),
        Param("resize", int, default=0, min=0,
              help="ImageNet-style: resize the shorter side to this, then centre-crop size (0: resize to size)"),
        Param("normalize", str, default="none", choices=("none", "imagenet"),
              help="per-channel normalisation after scaling to [0, 1]"),
        Param("test_fraction", float, default=0.2, min=0.0, max=1.0, min_exclusive=True,
              max_exclusive=True, help="share of each class held out for test (single-folder layout)"),
        Param("calibration_fraction", float, default=0.1, min=0.0, max=1.0, max_exclusive=True,
              help="share of each class (of train) held out for calibration"),
        Param("split_seed", int, default=0, help="seed of the split"),
    ),
    description="images in class folders (png, jpg, jpeg, bmp), resized (or resized and centre-cropped, "
                "ImageNet-style) and scaled to [0, 1], optionally ImageNet-normalised",
    example=imagefolder_example,
)


@hookimpl
def harness_register_datasets(register):
    """Register ``digits``, ``synthetic`` and ``imagefolder``."""
    for spec in (DIGITS, SYNTHETIC, IMAGEFOLDER):
        register(spec)
