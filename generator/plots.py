"""One helper per kind of figure, reused by every page. Nothing here writes to site/
except through ``save_png``, which the render stage calls with paths inside its
temporary output folder. Images are written without timestamps or software tags,
so the same input gives the same bytes."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LABEL_HEIGHT = 12
BACKGROUND = 255


def weight_images(weights: np.ndarray, size: int) -> np.ndarray:
    """Signed weights as grey images, symmetric limits per unit: 0 is mid-grey."""
    w = weights.reshape(len(weights), size, size)
    limit = np.abs(w).max(axis=(1, 2), keepdims=True)
    limit[limit == 0] = 1
    return np.clip(np.round(127.5 + 127.5 * w / limit), 0, 255).astype(np.uint8)


def tile_grid(images: np.ndarray, columns: int, labels: list[str] | None = None,
              gap: int = 2, scale: int = 1) -> Image.Image:
    """Compose grey images (n, h, w) into one picture, optionally with a label above each."""
    n, h, w = images.shape
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
        h, w = h * scale, w * scale
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    label_h = LABEL_HEIGHT if labels else 0
    cell_h, cell_w = h + label_h + gap, w + gap
    canvas = np.full((rows * cell_h + gap, columns * cell_w + gap), BACKGROUND, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        y, x = gap + r * cell_h + label_h, gap + c * cell_w
        canvas[y:y + h, x:x + w] = image
    picture = Image.fromarray(canvas, "L")
    if labels:
        draw, font = ImageDraw.Draw(picture), ImageFont.load_default(size=10)
        for i, text in enumerate(labels):
            r, c = divmod(i, columns)
            draw.text((gap + c * cell_w + 1, gap + r * cell_h), text, fill=0, font=font)
    return picture


def grid_columns(n: int, aspect: float = 1.0) -> int:
    """A column count that makes a grid of n square tiles about ``aspect`` wide per tall."""
    return max(1, math.ceil(math.sqrt(n * aspect)))


def enlarge(image: np.ndarray, size: int) -> Image.Image:
    """One grey image scaled to ``size`` pixels square, pixels kept crisp."""
    return Image.fromarray(image, "L").resize((size, size), Image.Resampling.NEAREST)


def loss_plot(train: list[float], test: list[float]) -> bytes:
    """Train and test loss per epoch, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.4), dpi=100)
    ax = fig.add_subplot()
    epochs = np.arange(1, len(train) + 1)
    ax.plot(epochs, train, marker="o", markersize=3, label="train (dropout on)")
    if test:
        ax.plot(epochs, test, marker="s", markersize=3, label="test (held-out people, eval mode)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean squared error per pixel")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def save_png(picture: Image.Image | bytes, path: Path) -> None:
    """Write a picture as an optimised PNG with no metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(picture, bytes):
        path.write_bytes(picture)
        return
    picture.save(path, format="PNG", optimize=True)
