"""The growth chart (docs/bench-growth.png), drawn with Pillow: time and peak memory of the initial
pipeline and of the daily run against history size (time entries), one point per preset.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1280, 520
PANEL_W, PANEL_H = 480, 360
MARGIN_LEFT, MARGIN_TOP = 90, 70
SERIES = {
    "initial": ("make pipeline (initial)", (31, 119, 180)),
    "daily": ("daily run (+1 day)", (214, 39, 40)),
}


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def nice_ceiling(value: float) -> float:
    """A round upper bound for an axis (1, 2, 5 × a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def panel(
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    title: str,
    unit: str,
    points: dict[str, list[tuple[float, float, str]]],
) -> None:
    """One panel: log-scale history on x, linear figure on y, a line per series."""
    left, top = origin
    bottom, right = top + PANEL_H, left + PANEL_W
    small, label = font(13), font(15)
    draw.text((left, top - 30), title, fill="black", font=label)
    draw.rectangle((left, top, right, bottom), outline=(120, 120, 120))
    xs = [x for series in points.values() for x, _, _ in series]
    ys = [y for series in points.values() for _, y, _ in series]
    if not xs:
        draw.text((left + 20, top + 20), "no measurements", fill="black", font=small)
        return
    low, high = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    high = max(high, low + 1)
    y_top = nice_ceiling(max(ys) * 1.1)

    def at(x: float, y: float) -> tuple[float, float]:
        fraction = (math.log10(x) - low) / (high - low)
        return left + fraction * PANEL_W, bottom - y / y_top * PANEL_H

    for exponent in range(low, high + 1):  # x grid: powers of ten
        x_pixel, _ = at(10**exponent, 0)
        draw.line((x_pixel, top, x_pixel, bottom), fill=(225, 225, 225))
        draw.text((x_pixel - 14, bottom + 6), f"1e{exponent}", fill="black", font=small)
    for step in range(6):  # y grid: fifths
        value = y_top * step / 5
        _, y_pixel = at(10**low, value)
        draw.line((left, y_pixel, right, y_pixel), fill=(225, 225, 225))
        draw.text((left - 60, y_pixel - 8), f"{value:,.4g} {unit}", fill="black", font=small)
    draw.text((left + PANEL_W / 2 - 80, bottom + 26), "time entries (log scale)", fill="black", font=small)
    for kind, series in points.items():
        colour = SERIES[kind][1]
        pixels = [at(x, y) for x, y, _ in sorted(series)]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        for (x_pixel, y_pixel), (_, y, name) in zip(pixels, sorted(series), strict=True):
            draw.ellipse((x_pixel - 4, y_pixel - 4, x_pixel + 4, y_pixel + 4), fill=colour)
            # initial's labels above its points, daily's below, so the two series do not overlap
            offset = -18 if kind == "initial" else 4
            draw.text((x_pixel + 6, y_pixel + offset), f"{name} {y:,.3g}", fill=colour, font=small)


def draw_growth(records: list[dict], out: Path) -> Path:
    """Draw the chart from the daily bench's records (one per preset) into `out`."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.text(
        (MARGIN_LEFT, 12),
        "Billable: cost against history size (median of the runs)",
        fill="black",
        font=font(18),
    )
    times: dict[str, list[tuple[float, float, str]]] = {kind: [] for kind in SERIES}
    memory: dict[str, list[tuple[float, float, str]]] = {kind: [] for kind in SERIES}
    for record in records:
        for kind in SERIES:
            runs = record[kind]
            size = max(record["time_entries"], 1)
            times[kind].append((size, statistics.median(run["seconds"] for run in runs), record["preset"]))
            peak = statistics.median(run["peak_mib"] for run in runs) / 1024
            memory[kind].append((size, peak, record["preset"]))
    panel(draw, (MARGIN_LEFT, MARGIN_TOP), "wall time", "s", times)
    panel(draw, (MARGIN_LEFT + PANEL_W + 150, MARGIN_TOP), "peak RSS of the largest process", "GiB", memory)
    for index, (label, colour) in enumerate(SERIES.values()):
        x = MARGIN_LEFT + index * 260
        draw.rectangle((x, HEIGHT - 30, x + 14, HEIGHT - 16), fill=colour)
        draw.text((x + 20, HEIGHT - 32), label, fill="black", font=font(14))
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out
