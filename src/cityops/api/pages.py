"""The web pages: /screen (the wall), /console (operators), /field (field staff's phones) and
/citizen (citizens' phones); the citizen page's own calls are in `citizen_reports`.

They are static HTML, CSS and ES modules from `cityops/web/`, with the browser libraries under
`/static/vendor/` (MapLibre GL JS and uPlot, pinned in `web/package.json`; `make install` runs
`npm ci` there, whose postinstall copies their dist files into `cityops/web/static/vendor/`,
inside the Python package, so an installed wheel built after that carries them too).

Nothing is loaded from another host: the base map's tiles, style, glyphs and sprite are the
node's own (`cityops.maps`), and the Content-Security-Policy sent with every page forbids any
other origin, except the tile server named by `CITYOPS_TILE_URL` when one is configured (raster
tiles `https://HOST/{z}/{x}/{y}.png`).
The pages hold no data and need no key; everything they show comes from the API with the key
the person signs in with (kept in sessionStorage, sent as `Authorization: Bearer`). No page may
be framed by another (`frame-ancestors 'none'`): a framed console could be clicked through.

`GET /static/{path}` serves the files under `web/static/` through Starlette's StaticFiles,
which refuses any path that leaves that directory (`..`, absolute paths, symlinks out).
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from cityops.api.route import PUBLIC, Call, Endpoint, Scope

WEB = Path(__file__).resolve().parent.parent / "web"
STATIC = WEB / "static"
VENDOR = STATIC / "vendor"
# What the pages import; a node started without them says how to get them.
VENDOR_FILES = ("maplibre-gl.mjs", "maplibre-gl-worker.mjs", "maplibre-gl.css",
                "uPlot.esm.js", "uPlot.min.css", "i18next.mjs",
                "i18next-browser-languagedetector.mjs")

MISSING = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>CityOps</title>
<style>body{font:18px/1.5 system-ui,sans-serif;background:#0b1220;color:#e6edf3;margin:3rem}
code{background:#1c2636;padding:.1rem .4rem;border-radius:4px}</style></head><body>
<h1>The web pages' libraries are not installed</h1>
<p>Missing in <code>%s</code>: %s.</p>
<p>Run <code>make install</code> (it runs <code>npm ci</code> in <code>web/</code>, which copies
MapLibre GL JS and uPlot there from the pinned npm packages), then reload.</p></body></html>"""


def tile_url(node: Any) -> str:
    return (getattr(node.settings, "tile_url", None) or os.environ.get("CITYOPS_TILE_URL")
            or "").strip()


def _csp(tiles: str) -> str:
    extra = ""
    if tiles:
        parts = urlsplit(tiles)
        extra = f" {parts.scheme}://{parts.netloc}"
    return ("default-src 'self'; script-src 'self'; worker-src 'self' blob:; "
            "child-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: blob:{extra}; connect-src 'self'{extra}; "
            "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def page_headers(node: Any) -> dict[str, str]:
    """What every page is sent with, the status page at / included."""
    return {"Content-Security-Policy": _csp(tile_url(node)), "Cache-Control": "no-cache",
            "Referrer-Policy": "no-referrer"}


def city_names(node: Any) -> str:
    """The city's name and its translations, as a page's i18n module reads them (a meta
    element's content: JSON, escaped for an attribute)."""
    info = node.pack.info
    doc = {"name": info.name, "names": dict(info.names)}
    return html.escape(json.dumps(doc, ensure_ascii=False), quote=True)


_templates: dict[str, str] = {}


def _page(name: str, node: Any) -> HTMLResponse:
    missing = [f for f in VENDOR_FILES if not (VENDOR / f).is_file()]
    if missing:
        return HTMLResponse(MISSING % (html.escape(str(VENDOR)), ", ".join(missing)), 503,
                            headers=page_headers(node))
    text = _templates.get(name)
    if text is None:
        text = _templates[name] = (WEB / f"{name}.html").read_text(encoding="utf-8")
    tiles = tile_url(node)
    body = (text.replace("{{city}}", html.escape(node.pack.info.name))
            .replace("{{city_names}}", city_names(node))
            .replace("{{tiles}}", html.escape(tiles, quote=True)))
    return HTMLResponse(body, headers=page_headers(node))


def _page_route(name: str):
    """The handler of one page: the same template fill for each, named after the page."""

    async def page(call: Call[None, Any]) -> HTMLResponse:
        return _page(name, call.node)

    page.__name__ = name
    return page


_static = StaticFiles(directory=STATIC, check_dir=False)


def _relative(path: str) -> str:
    """The path as StaticFiles' own mount would hand it over: OS separators, `.` and `..`
    folded (what is left of a `..` is then refused by StaticFiles' lookup)."""
    return os.path.normpath(os.path.join(*path.split("/")))


async def static_file(call: Call[None, Any]) -> Response:
    """A file under web/static/, with its own media type, ETag and Last-Modified (404 for
    anything else, a path that would leave the directory included).

    A script may run as a worker (MapLibre's tile workers), and a worker obeys the policy
    sent with its own script, not the page's: scripts carry the pages' policy, so a worker
    may fetch this node's tiles and glyphs (the floor policy, `default-src 'none'`, would
    refuse every fetch) and still nothing from another origin."""
    response = await _static.get_response(_relative(call.path["path"]), call.request.scope)
    if call.path["path"].endswith((".js", ".mjs")):
        response.headers["Content-Security-Policy"] = _csp(tile_url(call.node))
    return response


PAGE_NOTE = "HTML; loads only this node's scripts, styles and data (see its CSP)"

ROUTES = [
    *(Endpoint("GET", f"/{name}", _page_route(name), summary, PUBLIC, Scope.NONE,
               media_type="text/html", errors=(503,), description=PAGE_NOTE)
      for name, summary in (
          ("screen", "The wall screen"),
          ("console", "The operators' console"),
          ("field", "The field staff's page"),
          ("citizen", "The citizens' portal"),
          ("admin", "Administration: keys, devices, staff, grid-cell owners"),
          ("kiosk", "The 24-hour self-service kiosk"),
          ("verify", "Check that an e-licence is genuine"))),
    Endpoint("GET", "/static/{path:path}", static_file,
             "The pages' scripts, styles and libraries", PUBLIC, Scope.NONE,
             media_type="application/octet-stream", errors=(404,),
             description="Served with the file's own media type."),
]
