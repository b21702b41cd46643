"""The web pages: /screen (the wall), /console (operators), /field (field staff's phones) and
/citizen (citizens' phones), and the one call of its own the citizen page needs.

They are static HTML, CSS and ES modules from `cityops/web/`, with the browser libraries under
`/static/vendor/` (MapLibre GL JS and uPlot, pinned in `web/package.json`; `make install` runs
`npm ci` there, whose postinstall copies their dist files into `cityops/web/static/vendor/`,
inside the Python package, so an installed wheel built after that carries them too).

Nothing is loaded from another host: the base map is the city's own area polygons, and the
Content-Security-Policy sent with every page forbids any other origin, except the tile server
named by `CITYOPS_TILE_URL` when one is configured (raster tiles `https://HOST/{z}/{x}/{y}.png`).
The pages hold no data and need no key; everything they show comes from the API with the key
the person signs in with (kept in sessionStorage, sent as `Authorization: Bearer`).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

WEB = Path(__file__).resolve().parent.parent / "web"
STATIC = WEB / "static"
VENDOR = STATIC / "vendor"
# What the pages import; a node started without them says how to get them.
VENDOR_FILES = ("maplibre-gl.mjs", "maplibre-gl-worker.mjs", "maplibre-gl.css",
                "uPlot.esm.js", "uPlot.min.css")

MISSING = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>CityOps</title>
<style>body{font:18px/1.5 system-ui,sans-serif;background:#0b1220;color:#e6edf3;margin:3rem}
code{background:#1c2636;padding:.1rem .4rem;border-radius:4px}</style></head><body>
<h1>The web pages' libraries are not installed</h1>
<p>Missing in <code>%s</code>: %s.</p>
<p>Run <code>make install</code> (it runs <code>npm ci</code> in <code>web/</code>, which copies
MapLibre GL JS and uPlot there from the pinned npm packages), then reload.</p></body></html>"""


def tile_url(node) -> str:
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
            "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'")


_templates: dict[str, str] = {}


def _page(name: str, request: Request) -> HTMLResponse:
    missing = [f for f in VENDOR_FILES if not (VENDOR / f).is_file()]
    if missing:
        return HTMLResponse(MISSING % (html.escape(str(VENDOR)), ", ".join(missing)), 503)
    text = _templates.get(name)
    if text is None:
        text = _templates[name] = (WEB / f"{name}.html").read_text(encoding="utf-8")
    node = request.app.state.node
    tiles = tile_url(node)
    body = (text.replace("{{city}}", html.escape(node.pack.info.name))
            .replace("{{tiles}}", html.escape(tiles, quote=True)))
    return HTMLResponse(body, headers={"Content-Security-Policy": _csp(tiles),
                                       "Cache-Control": "no-cache",
                                       "Referrer-Policy": "no-referrer"})


async def screen(request: Request) -> HTMLResponse:
    return _page("screen", request)


async def console(request: Request) -> HTMLResponse:
    return _page("console", request)


async def field(request: Request) -> HTMLResponse:
    return _page("field", request)


async def citizen(request: Request) -> HTMLResponse:
    return _page("citizen", request)


async def citizen_report(request: Request) -> Response:
    """`GET /api/v1/citizens/me/reports/{service_request_id}`: the case an Open311 request
    joined, so that the citizen page can rate it once it is finished. Open311 publishes no
    incident id; a citizen may rate any finished public problem, so naming the case of a
    request id (which the public request list shows anyway) gives away nothing else."""
    from cityops.api.access import principal
    from cityops.api.errors import ApiError, json_response
    from cityops.domain.access import Role
    from cityops.open311.routes import catalogue_of
    from cityops.open311.service_requests import RequestDoc, Requests
    from cityops.serve.reviews import FINISHED_INCIDENTS

    await principal(request, {Role.CITIZEN})
    node = request.app.state.node
    rid = request.path_params["service_request_id"]
    rec = await Requests(node, catalogue_of(node)).get(rid)
    if rec is None:
        raise ApiError(404, f"no service request {rid}")
    doc = msgspec.json.decode(rec.doc, type=RequestDoc)
    inc = await node.store.get_incident(doc.incident_id)
    if inc is None:
        raise ApiError(404, f"no case for service request {rid}")
    return json_response({"service_request_id": rid, "incident_id": inc.id,
                          "incident_status": inc.status.value, "title": inc.title,
                          "finished": inc.status in FINISHED_INCIDENTS})
