"""One helper per kind of figure, reused by every page. Nothing here writes files:
the render stage encodes figures to bytes (``encode``) and writes them with the
rest of the site. Images carry no timestamps or software tags, so the same
input gives the same bytes."""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LABEL_HEIGHT = 12
BACKGROUND = 255
WEBP_QUALITY = 85


def weight_images(weights: np.ndarray, size: int) -> np.ndarray:
    """Signed weights as grey images, symmetric limits per unit: 0 is mid-grey."""
    w = weights.reshape(len(weights), size, size)
    limit = np.abs(w).max(axis=(1, 2), keepdims=True)
    limit[limit == 0] = 1
    return np.clip(np.round(127.5 + 127.5 * w / limit), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class GridLayout:
    """Where each tile of a composed grid lies, shared by the picture and the page's links."""

    n: int
    tile_h: int
    tile_w: int
    columns: int
    label_h: int = 0
    gap: int = 2

    @property
    def size(self) -> tuple[int, int]:
        rows = math.ceil(self.n / self.columns)
        return (self.columns * (self.tile_w + self.gap) + self.gap,
                rows * (self.tile_h + self.label_h + self.gap) + self.gap)

    def cell(self, i: int) -> tuple[int, int]:
        """Top-left corner of tile i's cell (its label, then its image)."""
        r, c = divmod(i, self.columns)
        return self.gap + c * (self.tile_w + self.gap), self.gap + r * (self.tile_h + self.label_h + self.gap)

    def boxes_percent(self) -> list[tuple[float, float, float, float]]:
        """Each cell as (left, top, width, height) in percent of the picture, for link overlays."""
        width, height = self.size
        cell_h = self.tile_h + self.label_h
        return [(round(100 * x / width, 4), round(100 * y / height, 4), round(100 * self.tile_w / width, 4),
                 round(100 * cell_h / height, 4)) for x, y in map(self.cell, range(self.n))]


def grid_layout(images: np.ndarray, columns: int, labels: bool = False, scale: int = 1) -> GridLayout:
    n, h, w = images.shape
    return GridLayout(n, h * scale, w * scale, max(1, min(columns, n)), LABEL_HEIGHT if labels else 0)


def part_images(parts: np.ndarray, size: int) -> np.ndarray:
    """Non-negative parts (NMF components) as grey images, black at 0 and white at each part's largest value."""
    w = parts.reshape(len(parts), size, size)
    limit = w.max(axis=(1, 2), keepdims=True)
    limit[limit <= 0] = 1
    return np.clip(np.round(255 * w / limit), 0, 255).astype(np.uint8)


def tile_grid(images: np.ndarray, columns: int, labels: list[str] | None = None, scale: int = 1) -> Image.Image:
    """Compose grey images (n, h, w) into one picture, optionally with a label above each."""
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    layout = grid_layout(images, columns, labels is not None)
    width, height = layout.size
    canvas = np.full((height, width), BACKGROUND, np.uint8)
    for i, image in enumerate(images):
        x, y = layout.cell(i)
        canvas[y + layout.label_h:y + layout.label_h + layout.tile_h, x:x + layout.tile_w] = image
    picture = Image.fromarray(canvas, "L")
    if labels:
        draw, font = ImageDraw.Draw(picture), ImageFont.load_default(size=10)
        for i, text in enumerate(labels):
            x, y = layout.cell(i)
            draw.text((x + 1, y), text, fill=0, font=font)
    return picture


def thumbnails(images: np.ndarray, size: int) -> np.ndarray:
    """Grey images scaled down to at most ``size`` pixels square (contact sheets)."""
    if images.shape[1] <= size:
        return images
    return np.stack([np.asarray(Image.fromarray(i, "L").resize((size, size), Image.Resampling.BOX))
                     for i in images])


def grid_columns(n: int, aspect: float = 1.0) -> int:
    """A column count that makes a grid of n square tiles about ``aspect`` wide per tall."""
    return max(1, math.ceil(math.sqrt(n * aspect)))


def loss_plot(train: list[float], test: list[float]) -> bytes:
    """Train and test loss per epoch, as PNG bytes."""
    fig, ax = _figure(6, 3.4)
    epochs = np.arange(1, len(train) + 1)
    ax.plot(epochs, train, marker="o", markersize=3, label="train (dropout on)")
    if test:
        ax.plot(epochs, test, marker="s", markersize=3, label="test (held-out people, eval mode)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean squared error per pixel")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return _png_bytes(fig)


def sweep_plot(runs: dict[str, list[float]], what: str = "test loss") -> bytes:
    """A loss per epoch of every run of an experiment sweep, one line each, as PNG bytes."""
    fig, ax = _figure(6, 3.8)
    for label, test in runs.items():
        ax.plot(np.arange(1, len(test) + 1), test, marker="o", markersize=2, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{what} (mean squared error per pixel)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    return _png_bytes(fig)


def trend_plot(years: list[str], series: dict[str, list[float]]) -> bytes:
    """The share of each year's faces showing each of a few looks, one line each, the legend below the lines
    (where no line runs), as PNG bytes."""
    width, height = trend_plot_size(len(series))
    fig, ax = _figure(width / 100, height / 100)
    x = np.arange(len(years))
    for label, values in series.items():
        ax.plot(x, 100 * np.asarray(values), marker="o", label=label)
    ax.set_xticks(x, years)
    ax.set_ylabel("share of the year's faces (%)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    fig.legend(frameon=False, fontsize=10, loc="lower center", ncol=1)
    return _png_bytes(fig, (0, LEGEND_LINE * len(series) / height, 1, 1))


LEGEND_LINE = 22  # pixels a legend line takes below the trend chart


def trend_plot_size(lines: int) -> tuple[int, int]:
    """The trend chart's width and height in pixels (its legend below it, a line per look), for the img tag."""
    return 600, 300 + LEGEND_LINE * lines


ATTRIBUTE_PLOT_SIZE = (220, 210)  # pixels of one attribute's chart: three fit a page's width, one a phone's


def attribute_plot(years: list[str], label: str, rows: list[tuple[float, float, float]]) -> bytes:
    """One measured attribute per year: its share (%) with the 95% interval, as PNG bytes."""
    fig, ax = _figure(ATTRIBUTE_PLOT_SIZE[0] / 100, ATTRIBUTE_PLOT_SIZE[1] / 100)
    x = np.arange(len(years))
    values = 100 * np.array(rows, float).reshape(-1, 3)
    ax.errorbar(x, values[:, 0], yerr=[values[:, 0] - values[:, 1], values[:, 2] - values[:, 0]], fmt="o", capsize=4)
    ax.set_xticks(x, years, fontsize=8)
    ax.set_xlim(-0.5, len(years) - 0.5)
    ax.set_ylim(bottom=0, top=max(5.0, float(values[:, 2].max()) * 1.15))
    ax.set_title(textwrap.fill(label, 30), fontsize=8)
    ax.set_ylabel("%", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3, axis="y")
    return _png_bytes(fig)


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig.add_subplot()


def _png_bytes(fig, rect: tuple[float, float, float, float] | None = None) -> bytes:
    """The figure as PNG bytes, laid out tightly (within ``rect`` of it: the rest is kept for a legend)."""
    fig.tight_layout(rect=rect)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def encode(picture: Image.Image | bytes, path: str) -> bytes:
    """A picture as the bytes of the file ``path`` names: optimised PNG, or WebP for
    large photographic pictures (contact sheets, unit grids), no metadata either way."""
    if isinstance(picture, bytes):
        return picture
    buffer = io.BytesIO()
    if path.endswith(".webp"):
        picture.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=4)  # 6 is 4x slower, 0.3% smaller
    else:
        picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
