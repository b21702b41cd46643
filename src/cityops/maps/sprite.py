"""The style's sprite: the few icons the base map draws (place markers), drawn by the node
with Pillow at 1x and 2x, so nothing is fetched and no binary sits in the repository.

MapLibre asks for `sprite.json` and `sprite.png` (and `@2x` on high-density screens): an
index of icon name -> rectangle in the sheet, and the sheet itself.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from functools import lru_cache

from PIL import Image, ImageDraw

Draw = Callable[[ImageDraw.ImageDraw, int], None]  # draws an icon at a scale


def _ring(fill: str, line: str, size: int) -> Draw:
    def draw(d: ImageDraw.ImageDraw, s: int) -> None:
        r = size * s
        d.ellipse((s, s, r - s, r - s), fill=fill, outline=line, width=max(1, 2 * s))
    return draw


def _square(fill: str, line: str, size: int) -> Draw:
    def draw(d: ImageDraw.ImageDraw, s: int) -> None:
        r = size * s
        d.rectangle((s, s, r - s - 1, r - s - 1), fill=fill, outline=line, width=max(1, 2 * s))
    return draw


# name -> (size in px at 1x, how it is drawn); dark and light variants for the two looks.
ICONS: dict[str, tuple[int, Draw]] = {
    "city": (14, _square("#ffd43b", "#1b2330", 14)),
    "town": (12, _ring("#e6edf3", "#1b2330", 12)),
    "village": (8, _ring("#8aa4c4", "#1b2330", 8)),
    "city-light": (14, _square("#1f2937", "#ffffff", 14)),
    "town-light": (12, _ring("#374151", "#ffffff", 12)),
    "village-light": (8, _ring("#6b7280", "#ffffff", 8)),
}


@lru_cache(maxsize=2)
def sprite(scale: int) -> tuple[bytes, bytes]:
    """(index JSON, PNG) at pixel ratio `scale` (1 or 2): icons side by side in one row."""
    width = sum(size * scale for size, _ in ICONS.values()) + len(ICONS) * 2 * scale
    height = max(size for size, _ in ICONS.values()) * scale
    sheet = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    index = {}
    x = 0
    for name, (size, draw) in ICONS.items():
        icon = Image.new("RGBA", (size * scale, size * scale), (0, 0, 0, 0))
        draw(ImageDraw.Draw(icon), scale)
        sheet.paste(icon, (x, 0))
        index[name] = {"x": x, "y": 0, "width": size * scale, "height": size * scale,
                       "pixelRatio": scale}
        x += size * scale + 2 * scale
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    return json.dumps(index).encode(), out.getvalue()
