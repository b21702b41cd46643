"""Glyphs for the map's labels, made by the node from a font on the system: signed distance
fields in the protobuf ranges MapLibre asks for (`/map/fonts/{stack}/{start}-{end}.pbf`).

No CDN and no prebuilt glyph package: each range of 256 code points is rendered with
FreeType (through Pillow, already a dependency) at 4x the glyph size of 24 px, turned into a
distance field with SciPy's exact Euclidean distance transform, sampled down to 24 px with a
3 px border and encoded by hand (the format is five small messages). The distance is mapped as
MapLibre's shader expects: 8 px of radius, the glyph's edge at 192 of 255.

Chinese and Japanese ideographs, kana and hangul never come here: the pages set MapLibre's
`localIdeographFontFamily`, so the browser draws those from its own fonts. A range costs about
0.1 s to make and is kept (bounded); a font stack the node does not know falls back to sans.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import distance_transform_edt

SIZE = 24  # px: the size MapLibre's glyph metrics are in
BORDER = 3
RADIUS = 8
CUTOFF = 0.25
SCALE = 4  # rendered this much larger, for a distance field finer than the pixel grid
RANGES_KEPT = 64

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"),
             Path("/Library/Fonts"), Path("C:/Windows/Fonts"))
# Stack name -> font files tried in order; the first found draws the glyphs it has.
STACKS = {
    "Sans Regular": ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf",
                     "wqy-microhei.ttc"),
    "Sans Bold": ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "Arial Bold.ttf",
                  "wqy-microhei.ttc"),
    "Sans Italic": ("DejaVuSans-Oblique.ttf", "LiberationSans-Italic.ttf", "Arial Italic.ttf",
                    "wqy-microhei.ttc"),
}
DEFAULT_STACK = "Sans Regular"
RANGE = re.compile(r"(\d{1,5})-(\d{1,5})")


class BadRange(ValueError):
    pass


def parse_range(text: str) -> int:
    """The first code point of a range named `START-END` (256 code points, START % 256 == 0)."""
    m = RANGE.fullmatch(text)
    if not m:
        raise BadRange(f"glyph range {text!r} is not START-END")
    start, end = int(m.group(1)), int(m.group(2))
    if start % 256 or end != start + 255 or end > 0xFFFF:
        raise BadRange(f"glyph range {text!r}: ranges are 256 code points from a multiple of "
                       "256, up to 65535")
    return start


def stack_of(requested: str) -> str:
    """The first stack of a comma-separated list that the node has, else sans."""
    for name in requested.split(","):
        if name.strip() in STACKS:
            return name.strip()
    return DEFAULT_STACK


@lru_cache(maxsize=64)
def _find(filename: str) -> Path | None:
    for base in FONT_DIRS:
        if base.is_dir():
            for found in base.rglob(filename):
                return found
    return None


@lru_cache(maxsize=16)
def _fonts(stack: str) -> tuple[ImageFont.FreeTypeFont, ...]:
    fonts = []
    for name in STACKS[stack]:
        path = _find(name)
        if path is not None:
            fonts.append(ImageFont.truetype(str(path), SIZE * SCALE))
    return tuple(fonts)


def fonts_available() -> bool:
    return bool(_fonts(DEFAULT_STACK))


def _notdef(font: ImageFont.FreeTypeFont) -> bytes:
    # What the font draws for a code point it lacks (private use area): compared against.
    return bytes(font.getmask(chr(0xE000)))


def _pick(fonts: tuple[ImageFont.FreeTypeFont, ...], char: str
          ) -> ImageFont.FreeTypeFont | None:
    for font in fonts:
        if char == " " or bytes(font.getmask(char)) != _notdefs(font):
            return font
    return None


_notdef_cache: dict[int, bytes] = {}


def _notdefs(font: ImageFont.FreeTypeFont) -> bytes:
    key = id(font)
    if key not in _notdef_cache:
        _notdef_cache[key] = _notdef(font)
    return _notdef_cache[key]


def _sdf(font: ImageFont.FreeTypeFont, char: str) -> tuple[bytes, int, int, int, int, int]:
    """bitmap, width, height, left, top, advance of one glyph (px at SIZE)."""
    ascent, _ = font.getmetrics()
    advance = round(font.getlength(char) / SCALE)
    box = font.getbbox(char, anchor="ls")  # relative to the left end of the baseline
    left, top, right, bottom = (round(v / SCALE) for v in box)
    width, height = max(0, right - left), max(0, bottom - top)
    if width == 0 or height == 0:
        return b"", 0, 0, 0, 0, advance
    # Rendered at SCALE x, on a canvas with room for the border, aligned to whole pixels.
    pad = BORDER * SCALE
    w, h = (width + 2 * BORDER) * SCALE, (height + 2 * BORDER) * SCALE
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).text((pad - left * SCALE, pad - top * SCALE), char, font=font,
                                fill=255, anchor="ls")
    ink = np.asarray(canvas) >= 128
    outside = distance_transform_edt(~ink)
    inside = distance_transform_edt(ink)
    signed = (outside - inside) / SCALE  # px at SIZE, positive outside the glyph
    # Sample each SIZE pixel at its centre.
    centre = SCALE // 2
    sampled = signed[centre::SCALE, centre::SCALE][:height + 2 * BORDER, :width + 2 * BORDER]
    values = np.clip(np.round(255 - 255 * (sampled / RADIUS + CUTOFF)), 0, 255)
    # MapLibre's `top` counts from the line's top (the ascender), not from the baseline.
    top_metric = -top - round(ascent / SCALE)
    return values.astype(np.uint8).tobytes(), width, height, left, top_metric, advance


# -- the protobuf (glyphs.proto: glyphs { fontstack { name, range, glyph* } }) ---------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: int | bytes, zigzag: bool = False) -> bytes:
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    if zigzag:
        value = (value << 1) ^ (value >> 63)
    return _varint(number << 3) + _varint(value)


def _glyph(code: int, bitmap: bytes, width: int, height: int, left: int, top: int,
           advance: int) -> bytes:
    body = _field(1, code)
    if bitmap:
        body += _field(2, bitmap)
    body += (_field(3, width) + _field(4, height) + _field(5, left, zigzag=True)
             + _field(6, top, zigzag=True) + _field(7, advance))
    return body


def render_range(stack: str, start: int) -> bytes:
    fonts = _fonts(stack)
    glyphs = b""
    for code in range(start, start + 256):
        char = chr(code)
        if not char.isprintable() and char != " ":
            continue
        font = _pick(fonts, char)
        if font is None:
            continue
        glyphs += _field(3, _glyph(code, *_sdf(font, char)))
    stack_msg = _field(1, stack.encode()) + _field(2, f"{start}-{start + 255}".encode()) + glyphs
    return _field(1, stack_msg)


class GlyphCache:
    """Ranges made on first request and kept, the least recently asked for dropped first."""

    def __init__(self, kept: int = RANGES_KEPT) -> None:
        self.kept = kept
        self._ranges: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, stack: str, start: int) -> bytes:
        key = (stack, start)
        with self._lock:
            found = self._ranges.get(key)
            if found is not None:
                self._ranges.move_to_end(key)
                return found
        made = render_range(stack, start)
        with self._lock:
            self._ranges[key] = made
            while len(self._ranges) > self.kept:
                self._ranges.popitem(last=False)
        return made
