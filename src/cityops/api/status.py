"""The node's status page:

    GET /              a plain page: what the node holds and how fast readings arrive
    GET /status.json   the page's figures

The page is public and always says what the node is (city, areas, devices, store). Its figures
(readings stored and refused, dead letters) describe the whole node, so they are shown, on the
page as in /status.json, only where `Settings.open_status` publishes them; otherwise
/status.json asks for a key with no area or department scope, as /metrics does. The page runs
under the pages' Content-Security-Policy: its refresh script is a file of its own, no inline
code. The big screen is a separate page (/screen).
"""

from __future__ import annotations

import html
from typing import Any

import msgspec
from starlette.responses import HTMLResponse

from cityops.api.ops import guard_open
from cityops.api.pages import city_names, page_headers
from cityops.api.route import PUBLIC, Call, Endpoint, Scope

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title data-i18n="status:title">CityOps · {city}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="cityops-city" content="{city_names}">
<style>
body{{font:16px/1.4 system-ui,sans-serif;background:#0d1117;color:#e6edf3;margin:2rem}}
h1{{font-size:1.6rem;margin:0 0 .2rem}} .muted{{color:#8b949e}}
table{{border-collapse:collapse;margin-top:1rem}} td{{padding:.3rem 1.2rem .3rem 0}}
td.n{{text-align:right;font-variant-numeric:tabular-nums;font-size:1.3rem}}
a{{color:#58a6ff}} header{{display:flex;justify-content:space-between;align-items:baseline}}
</style></head><body data-open="{open}">
<header><h1 data-i18n="status:heading">CityOps · {city}</h1><span id="lang"></span></header>
<div class="muted" data-i18n="status:holds" data-arg-areas="{areas}" data-arg-devices="{devices}"
data-arg-store="{store}">{areas} areas · {devices} devices · store {store}</div>
<table>
<tr><td data-i18n="status:rate">Readings stored per second (10 s)</td><td class="n" id="rate">{rate}</td></tr>
<tr><td data-i18n="status:stored">Readings stored since start</td><td class="n" id="stored">{stored}</td></tr>
<tr><td data-i18n="status:rejected">Readings rejected</td><td class="n" id="rejected">{rejected}</td></tr>
<tr><td data-i18n="status:dead">Dead letters</td><td class="n" id="dead">{dead}</td></tr>
</table>
<p class="muted">{note}<span data-i18n="status:api">API:</span> <a href="/openapi.json">/openapi.json</a> ·
<span data-i18n="status:metrics">metrics:</span> <a href="/metrics">/metrics</a> ·
<span data-i18n="status:health">health:</span> <a href="/healthz">/healthz</a></p>
<script type="module" src="/static/status.js"></script>
</body></html>"""

CLOSED_NOTE = ('<span data-i18n="status:closed">The figures are for operators: /status.json with a '
               'key.</span> ')


class Figures(msgspec.Struct):
    rate: int  # readings stored per second, over the last 10 s
    stored: int  # readings stored since start
    rejected: int
    dead: int  # dead letters added since start


def _figures(node: Any) -> Figures:
    m = node.metrics
    stored = sum(s.value for metric in m.accepted.collect() for s in metric.samples
                 if s.name.endswith("_total"))
    rejected = sum(s.value for metric in m.rejected.collect() for s in metric.samples
                   if s.name.endswith("_total"))
    dead = node.dead_letters.stats.added if node.dead_letters is not None else 0
    return Figures(round(m.rate.rate()), int(stored), int(rejected), int(dead))


async def status_page(call: Call[None, Any]) -> HTMLResponse:
    node = call.node
    store = node.store.url.split("@")[-1]
    is_open = bool(node.settings.open_status)
    shown = ({k: f"{v:,}" for k, v in msgspec.structs.asdict(_figures(node)).items()}
             if is_open else dict.fromkeys(Figures.__struct_fields__, "–"))
    return HTMLResponse(PAGE.format(
        city=html.escape(node.pack.info.name), city_names=city_names(node),
        areas=len(node.pack.areas),
        devices=len(node.registry), store=html.escape(store.split("?")[0]),
        open="1" if is_open else "0", note="" if is_open else CLOSED_NOTE, **shown,
    ), headers=page_headers(node))


async def status_json(call: Call[None, Any]) -> Figures:
    await guard_open(call)
    return _figures(call.node)


ROUTES = [
    Endpoint("GET", "/", status_page, "The node's status page", PUBLIC, Scope.NONE,
             media_type="text/html"),
    Endpoint("GET", "/status.json", status_json,
             "The status page's figures (a key without a scope unless open_status)",
             PUBLIC, Scope.NONE, response=Figures, errors=(401, 403)),
]
