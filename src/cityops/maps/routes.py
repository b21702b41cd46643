"""The base map served by the node itself: vector tiles from its archive, the style, glyphs
and the sprite. All public (a map shows no city data beyond what its archive was built
from) and same-origin, so the pages' CSP needs no other host.

The archive is `DATA/map.pmtiles` (`cityops map build`, or `cityops demo` on first run). A
node without one answers 404 with the code `map_not_built` for the style and tiles, and the
pages keep to the pack's own polygons. Tiles are stored gzipped and sent as they are to any
client that accepts gzip (`Content-Encoding: gzip`), decompressed for one that does not; a
tile the archive lacks (open country, beyond the city) is 204; every answer carries an ETag
from the archive's stamp, so a browser revalidates cheaply and sees a rebuilt map at once.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import msgspec
from starlette.responses import Response

from cityops.api.errors import ApiError
from cityops.api.route import PUBLIC, Call, Endpoint, Scope
from cityops.maps import glyphs, sprite
from cityops.maps.archive import ArchiveSlot, TileArchive, archive_path
from cityops.maps.style import LANGS, THEMES, style

MAX_ZOOM = 22
TILE_CACHE = "public, max-age=300"
STATIC_CACHE = "public, max-age=86400"

_slots: dict[Path, ArchiveSlot] = {}
_glyphs = glyphs.GlyphCache()


def archive_of(call: Call[Any, Any]) -> TileArchive | None:
    path = archive_path(call.node.settings.data_dir)
    slot = _slots.get(path)
    if slot is None:
        slot = _slots[path] = ArchiveSlot(path)
    return slot.get()


def _not_built() -> ApiError:
    return ApiError(404, "this node has no base map: run `cityops map build`",
                    code="map_not_built")


def _not_modified(call: Call[Any, Any], etag: str, headers: dict[str, str]) -> Response | None:
    if call.request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return None


def _int(name: str, text: str, top: int) -> int:
    # isdigit() alone takes "³" and other digits int() refuses: ASCII digits only, short.
    if not (text.isascii() and text.isdigit() and len(text) <= 6) or int(text) > top:
        raise ApiError(400, f"tile {name} {text!r} is not a whole number from 0 to {top}",
                       code="bad_tile")
    return int(text)


async def tile(call: Call[None, Any]) -> Response:
    z = _int("zoom", call.path["z"], MAX_ZOOM)
    top = (1 << z) - 1
    x, y = _int("column", call.path["x"], top), _int("row", call.path["y"], top)
    archive = archive_of(call)
    if archive is None:
        raise _not_built()
    etag = f'"{archive.etag}"'
    headers = {"Cache-Control": TILE_CACHE, "ETag": etag, "Vary": "Accept-Encoding",
               "Access-Control-Allow-Origin": "*"}
    unchanged = _not_modified(call, etag, headers)
    if unchanged is not None:
        return unchanged
    data = archive.tile(z, x, y)
    if data is None:
        return Response(status_code=204, headers=headers)
    if archive.gzipped:
        if "gzip" in call.request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
        else:
            data = gzip.decompress(data)
    return Response(data, media_type="application/vnd.mapbox-vector-tile", headers=headers)


class StyleQuery(msgspec.Struct, forbid_unknown_fields=True):
    theme: str = "dark"  # dark (screen, console) or light (citizens' phones)
    lang: str = "en"  # en or zh (zh-CN): which name of a place is drawn

    def __post_init__(self) -> None:
        if self.theme not in THEMES:
            raise msgspec.ValidationError(f"theme must be one of {', '.join(THEMES)} - at "
                                          "`$.theme`")
        self.lang = self.lang.split("-")[0].lower()
        if self.lang not in LANGS:
            raise msgspec.ValidationError("lang must be one of en, zh, zh-CN - at `$.lang`")


async def map_style(call: Call[None, StyleQuery]) -> Response:
    archive = archive_of(call)
    if archive is None:
        raise _not_built()
    meta = archive.metadata()
    h = archive.header
    source = {"minzoom": h["min_zoom"], "maxzoom": h["max_zoom"], "bounds": archive.bounds(),
              "attribution": meta.get("attribution", "")}
    body = style(call.query.theme, call.query.lang, source)
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/json",
                    headers={"Cache-Control": "no-cache", "ETag": f'"{archive.etag}"'})


async def glyph_range(call: Call[None, Any]) -> Response:
    try:
        start = glyphs.parse_range(call.path["range"])
    except glyphs.BadRange as error:
        raise ApiError(400, str(error), code="bad_glyph_range") from None
    if not glyphs.fonts_available():
        raise ApiError(404, "no font on this node to draw labels with (install fonts-dejavu)",
                       code="no_font")
    stack = glyphs.stack_of(call.path["fontstack"])
    # About 0.1-0.5 s for a range not made before: off the event loop.
    body = await asyncio.to_thread(_glyphs.get, stack, start)
    return Response(body, media_type="application/x-protobuf",
                    headers={"Cache-Control": STATIC_CACHE})


def _sprite(scale: int, part: int, media: str):
    async def handler(call: Call[None, Any]) -> Response:
        return Response(sprite.sprite(scale)[part], media_type=media,
                        headers={"Cache-Control": STATIC_CACHE})
    handler.__name__ = f"sprite_{scale}x_{'png' if part else 'json'}"
    return handler


TILE_NOTE = ("A Mapbox Vector Tile (layers areas, places, roads, water, waterways, parks, "
             "buildings); gzip-encoded when the client accepts it; 204 where the archive has "
             "no tile; 404 `map_not_built` when the node has no archive.")

ROUTES = [
    Endpoint("GET", "/tiles/{z}/{x}/{y}.mvt", tile, "A base-map vector tile", PUBLIC,
             Scope.NONE, media_type="application/vnd.mapbox-vector-tile",
             also_ok=(204,), errors=(400, 404), description=TILE_NOTE, tags=("map",),
             examples={"z": "8", "x": "213", "y": "104"}),
    Endpoint("GET", "/map/style.json", map_style, "The base map's MapLibre style", PUBLIC,
             Scope.NONE, query=StyleQuery, errors=(404,), tags=("map",),
             description="`theme=dark|light`, `lang=en|zh`; URLs are relative to the node."),
    Endpoint("GET", "/map/fonts/{fontstack}/{range}.pbf", glyph_range,
             "Label glyphs (signed distance fields) for a range of 256 code points", PUBLIC,
             Scope.NONE, media_type="application/x-protobuf", errors=(400, 404),
             tags=("map",), examples={"fontstack": "Sans Regular", "range": "0-255"}),
    *(Endpoint("GET", f"/map/sprite{suffix}.{ext}", _sprite(scale, part, media),
               f"The base map's icons ({ext}, {scale}x)", PUBLIC, Scope.NONE,
               media_type=media, tags=("map",))
      for suffix, scale in (("", 1), ("@2x", 2))
      for ext, part, media in (("json", 0, "application/json"), ("png", 1, "image/png"))),
]
