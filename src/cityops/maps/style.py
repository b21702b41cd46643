"""The MapLibre style of the base map, in two looks: `dark` for the wall screen and the
console (streets and water present but quiet, so the live objects and area states stay the
brightest things on the wall) and `light` for citizens' phones in daylight (a street map a
person finds their own street on).

Names follow the page's language: `name_zh` or `name_en` where the data has it, else `name`
as the data gives it. URLs are relative to the node (`/tiles/...`); a page resolves them
against its own origin, so the style works behind any public name and the CSP stays
same-origin.

Layer ids start with `base-`; a page puts its own layers between them: area fills above
`base-background` and below `base-water` (see FIRST_ABOVE_AREAS), its lines and points above
the roads but below `base-labels-*`.
"""

from __future__ import annotations

from typing import Any

from cityops.maps.glyphs import DEFAULT_STACK

FIRST_ABOVE_AREAS = "base-water"
FIRST_LABEL = "base-labels-roads"
THEMES = ("dark", "light")
LANGS = ("en", "zh")

PALETTE = {
    "dark": {
        "background": "#070d18", "water": "#0c2c4a", "waterway": "#1a4a75",
        "park": "#0c2419", "building": "#131c2a", "boundary": "#2d4566",
        "casing": "#05090f",
        "road": {"motorway": "#8a6a3a", "trunk": "#7a6240", "primary": "#4f6a91",
                 "secondary": "#456084", "tertiary": "#3b5373", "minor": "#34496a",
                 "service": "#283a55", "path": "#243349", "rail": "#3d4a5c"},
        "text": "#c9d6e6", "halo": "#070d18", "place_text": "#e6edf3", "icon": "",
    },
    "light": {
        "background": "#f2efe9", "water": "#a9d3f5", "waterway": "#7fb8e8",
        "park": "#cfe8c0", "building": "#dcd6cc", "boundary": "#9a8fb5",
        "casing": "#c9c2b6",
        "road": {"motorway": "#f2a65a", "trunk": "#f6bd6e", "primary": "#fcd581",
                 "secondary": "#fdf0a6", "tertiary": "#ffffff", "minor": "#ffffff",
                 "service": "#ffffff", "path": "#e3ddd3", "rail": "#9a9a9a"},
        "text": "#333a44", "halo": "#ffffff", "place_text": "#1f2937", "icon": "-light",
    },
}

# Line widths in px at zoom 10, 14 and 18 (interpolated, exponential).
WIDTH = {"motorway": (1.6, 5, 18), "trunk": (1.4, 4.5, 16), "primary": (1.1, 4, 15),
         "secondary": (0.8, 3.5, 13), "tertiary": (0.5, 3, 12), "minor": (0.3, 2, 10),
         "service": (0.2, 1, 6), "path": (0.2, 0.8, 3), "rail": (0.4, 1, 2.5)}
ROAD_ORDER = ("path", "service", "minor", "tertiary", "secondary", "primary", "trunk",
              "motorway")


def _width(cls: str, scale: float = 1.0) -> list[Any]:
    w10, w14, w18 = WIDTH[cls]
    return ["interpolate", ["exponential", 1.5], ["zoom"], 10, w10 * scale, 14, w14 * scale,
            18, w18 * scale]


def _casing(classes: list[str]) -> list[Any]:
    """A casing 1.4 times its road's width: one zoom curve whose stops match the class (a
    zoom curve may not sit inside a `match`)."""
    stops: list[Any] = []
    for i, zoom in enumerate((10, 14, 18)):
        by_class = [x for c in classes for x in (c, WIDTH[c][i] * 1.4)]
        stops += [zoom, ["match", ["get", "class"], *by_class, 1]]
    return ["interpolate", ["exponential", 1.5], ["zoom"], *stops]


def _name(lang: str) -> list[Any]:
    return ["coalesce", ["get", f"name_{lang}"], ["get", "name"]]


def style(theme: str = "dark", lang: str = "en", source: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    p = PALETTE[theme]
    src = {"type": "vector", "tiles": ["/tiles/{z}/{x}/{y}.mvt"], "minzoom": 8, "maxzoom": 14,
           **(source or {})}
    font = [DEFAULT_STACK]
    layers: list[dict[str, Any]] = [
        {"id": "base-background", "type": "background",
         "paint": {"background-color": p["background"]}},
        {"id": FIRST_ABOVE_AREAS, "type": "fill", "source": "base", "source-layer": "water",
         "paint": {"fill-color": p["water"]}},
        {"id": "base-parks", "type": "fill", "source": "base", "source-layer": "parks",
         "paint": {"fill-color": p["park"], "fill-opacity": 0.8}},
        {"id": "base-waterways", "type": "line", "source": "base", "source-layer": "waterways",
         "paint": {"line-color": p["waterway"],
                   "line-width": ["interpolate", ["linear"], ["zoom"], 9, 0.6, 16, 4]}},
        {"id": "base-buildings", "type": "fill", "source": "base", "source-layer": "buildings",
         "minzoom": 14, "paint": {"fill-color": p["building"], "fill-opacity": 0.9}},
        {"id": "base-boundaries-village", "type": "line", "source": "base",
         "source-layer": "areas", "minzoom": 12, "filter": ["==", ["get", "level"], "village"],
         "paint": {"line-color": p["boundary"], "line-width": 0.6, "line-dasharray": [3, 2]}},
        {"id": "base-boundaries-town", "type": "line", "source": "base", "source-layer": "areas",
         "filter": ["==", ["get", "level"], "town"],
         "paint": {"line-color": p["boundary"], "line-width": 1, "line-dasharray": [4, 2]}},
        {"id": "base-rail", "type": "line", "source": "base", "source-layer": "roads",
         "filter": ["==", ["get", "class"], "rail"],
         "paint": {"line-color": p["road"]["rail"], "line-width": _width("rail"),
                   "line-dasharray": [3, 3]}},
    ]
    # Casings under the bigger roads (drawn first), then every class from least to most
    # important, so a motorway passes over the streets it crosses.
    big = ["motorway", "trunk", "primary", "secondary"]
    layers.append({"id": "base-roads-casing", "type": "line", "source": "base",
                   "source-layer": "roads", "minzoom": 12,
                   "filter": ["in", ["get", "class"], ["literal", big]],
                   "layout": {"line-cap": "round", "line-join": "round"},
                   "paint": {"line-color": p["casing"], "line-width": _casing(big)}})
    for cls in ROAD_ORDER:
        layers.append({"id": f"base-roads-{cls}", "type": "line", "source": "base",
                       "source-layer": "roads", "filter": ["==", ["get", "class"], cls],
                       "layout": {"line-cap": "round", "line-join": "round"},
                       "paint": {"line-color": p["road"][cls], "line-width": _width(cls)}})
    text = {"text-color": p["text"], "text-halo-color": p["halo"], "text-halo-width": 1.4}
    layers += [
        {"id": FIRST_LABEL, "type": "symbol", "source": "base", "source-layer": "roads",
         "minzoom": 13, "filter": ["all", ["has", "name"], ["!=", ["get", "class"], "rail"]],
         "layout": {"symbol-placement": "line", "text-field": _name(lang), "text-font": font,
                    "text-size": ["interpolate", ["linear"], ["zoom"], 13, 10, 18, 14],
                    "text-max-angle": 30, "symbol-spacing": 300},
         "paint": text},
        {"id": "base-labels-water", "type": "symbol", "source": "base",
         "source-layer": "waterways", "minzoom": 12, "filter": ["has", "name"],
         "layout": {"symbol-placement": "line", "text-field": _name(lang), "text-font": font,
                    "text-size": 11},
         "paint": {**text, "text-color": p["waterway"]}},
        {"id": "base-labels-villages", "type": "symbol", "source": "base",
         "source-layer": "places",
         "filter": ["in", ["get", "class"], ["literal", ["village", "suburb", "quarter",
                                                         "neighbourhood", "hamlet"]]],
         "layout": {"text-field": _name(lang), "text-font": font,
                    "text-size": ["interpolate", ["linear"], ["zoom"], 11, 10, 16, 14],
                    "icon-image": f"village{p['icon']}", "text-anchor": "top",
                    "text-offset": [0, 0.6], "text-max-width": 8, "text-optional": True},
         "paint": text},
        {"id": "base-labels-towns", "type": "symbol", "source": "base", "source-layer": "places",
         "filter": ["in", ["get", "class"], ["literal", ["town", "city", "district"]]],
         "layout": {"text-field": _name(lang), "text-font": ["Sans Bold"],
                    "text-size": ["interpolate", ["linear"], ["zoom"], 8, 11, 14, 16],
                    "icon-image": ["match", ["get", "class"], "town", f"town{p['icon']}",
                                   f"city{p['icon']}"],
                    "text-anchor": "top", "text-offset": [0, 0.7], "text-max-width": 8,
                    "text-optional": True},
         "paint": {**text, "text-color": p["place_text"], "text-halo-width": 1.8}},
    ]
    return {"version": 8, "name": f"CityOps {theme}", "sources": {"base": src},
            "glyphs": "/map/fonts/{fontstack}/{range}.pbf", "sprite": "/map/sprite",
            "layers": layers}
