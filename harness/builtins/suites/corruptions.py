"""Seeded, severity-graded corruptions and shifts of image batches, for the ``robustness-shift`` suite.

Seven of them, each at severities 1 to 5: ``gaussian-noise``, ``gaussian-blur``, ``contrast`` and
``brightness`` (ImageNet-C's families, Hendrycks & Dietterich 2019), and ``rotation``,
``translation`` and ``occlusion``, standing in for ImageNet-E's object and background edits.

They are numpy and ``scipy.ndimage`` (``gaussian_filter``, ``rotate``, ``shift``), not the
``imagecorruptions`` package: that one takes HxWx3 uint8 pictures and sizes its kernels for
224-pixel ImageNet images (at 8x8 its blurs and frost either do nothing or fail), while
``scipy.ndimage`` is maintained, already a dependency, and works on float arrays of any size and
channel count. Geometric strengths are fractions of the image side, so a severity means the same
on 8x8 digits and on 32x32 pictures; noise, contrast and brightness follow ImageNet-C's constants,
scaled to the data's value range. Every corruption is clipped back into that range.

Given the same seed, every model sees exactly the same corrupted inputs (the dense one included),
so errors are paired across methods.
"""

from __future__ import annotations

from typing import Any

SEVERITIES = (1, 2, 3, 4, 5)

#: Per corruption, its strength at severities 1..5 (what each means: :func:`corrupt`).
STRENGTH = {
    "gaussian-noise": (0.08, 0.12, 0.18, 0.26, 0.38),   # noise std, fraction of the value range (ImageNet-C)
    "gaussian-blur": (0.05, 0.075, 0.1, 0.125, 0.16),   # blur sigma, fraction of the image side
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),             # contrast kept around each image's mean (ImageNet-C)
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),            # added, fraction of the value range (ImageNet-C)
    "rotation": (6.0, 12.0, 18.0, 24.0, 30.0),          # degrees, sign drawn per image
    "translation": (0.0625, 0.125, 0.1875, 0.25, 0.3125),  # shift, fraction of the side, direction drawn per image
    "occlusion": (0.2, 0.3, 0.4, 0.5, 0.6),             # side of a square patch set to the background, fraction
}
CORRUPTIONS = tuple(STRENGTH)


def corrupt(x: Any, name: str, severity: int, seed: int, value_range: tuple[float, float]) -> Any:
    """``x`` (``(N, C, H, W)`` or ``(N, H, W)`` floats) under corruption ``name`` at ``severity`` (1-5).

    ``seed`` and the corruption and severity seed the draws (noise, rotation signs, directions, patch
    places), so the result is a function of its arguments. ``value_range`` is ``(lo, hi)`` of the data:
    noise and brightness scale with it, the background (``lo``) fills what a rotation, a translation
    or an occlusion uncovers, and the result is clipped into it.
    """
    import numpy as np
    from scipy import ndimage

    if name not in STRENGTH:
        raise ValueError(f"unknown corruption {name!r} (known: {', '.join(CORRUPTIONS)})")
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} must be one of {SEVERITIES}")
    lo, hi = float(value_range[0]), float(value_range[1])
    span = hi - lo if hi > lo else 1.0
    s = STRENGTH[name][severity - 1]
    rng = np.random.default_rng([int(seed), CORRUPTIONS.index(name), severity])
    src = np.asarray(x, dtype=np.float64)
    images = src.reshape((-1,) + src.shape[-2:])  # (N * C, H, W): channels move together below
    per_image = src.shape[1] if src.ndim == 4 else 1
    n, h, w = len(src), src.shape[-2], src.shape[-1]
    side = max(h, w)

    if name == "gaussian-noise":
        out = src + rng.normal(0.0, s * span, size=src.shape)
    elif name == "gaussian-blur":
        out = ndimage.gaussian_filter(images, sigma=(0, s * side, s * side), mode="nearest").reshape(src.shape)
    elif name == "contrast":
        axes = tuple(range(1, src.ndim))
        mean = src.mean(axis=axes, keepdims=True)
        out = (src - mean) * s + mean
    elif name == "brightness":
        out = src + s * span
    else:
        out = np.empty_like(images)
        if name == "rotation":
            angles = s * rng.choice([-1.0, 1.0], size=n)
            for i, img in enumerate(images):
                out[i] = ndimage.rotate(img, angles[i // per_image], reshape=False, order=1, mode="constant",
                                        cval=lo)
        elif name == "translation":
            theta = rng.uniform(0.0, 2 * np.pi, size=n)
            offsets = s * side * np.stack([np.sin(theta), np.cos(theta)], axis=1)
            for i, img in enumerate(images):
                out[i] = ndimage.shift(img, offsets[i // per_image], order=1, mode="constant", cval=lo)
        else:  # occlusion
            ph, pw = max(1, round(s * h)), max(1, round(s * w))
            rows = rng.integers(0, h - ph + 1, size=n)
            cols = rng.integers(0, w - pw + 1, size=n)
            out[:] = images
            for i in range(len(images)):
                r, c = rows[i // per_image], cols[i // per_image]
                out[i, r:r + ph, c:c + pw] = lo
        out = out.reshape(src.shape)
    return np.clip(out, lo, hi).astype(np.asarray(x).dtype, copy=False)
