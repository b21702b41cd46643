"""A plain status page: what the node holds and how fast readings arrive (the big screen is a
separate page, served from the same origin with no outside requests)."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CityOps · {city}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font:16px/1.4 system-ui,sans-serif;background:#0d1117;color:#e6edf3;margin:2rem}}
h1{{font-size:1.6rem;margin:0 0 .2rem}} .muted{{color:#8b949e}}
table{{border-collapse:collapse;margin-top:1rem}} td{{padding:.3rem 1.2rem .3rem 0}}
td.n{{text-align:right;font-variant-numeric:tabular-nums;font-size:1.3rem}}
a{{color:#58a6ff}}
</style></head><body>
<h1>CityOps · {city}</h1><div class="muted">{areas} areas · {devices} devices · store {store}</div>
<table>
<tr><td>Readings stored per second (10 s)</td><td class="n" id="rate">{rate}</td></tr>
<tr><td>Readings stored since start</td><td class="n" id="stored">{stored}</td></tr>
<tr><td>Readings rejected</td><td class="n" id="rejected">{rejected}</td></tr>
<tr><td>Dead letters</td><td class="n" id="dead">{dead}</td></tr>
</table>
<p class="muted">API: <a href="/openapi.json">/openapi.json</a> · metrics:
<a href="/metrics">/metrics</a> · health: <a href="/healthz">/healthz</a></p>
<script>
setInterval(async () => {{
  const r = await fetch('/status.json'); if (!r.ok) return; const s = await r.json();
  for (const k of ['rate','stored','rejected','dead'])
    document.getElementById(k).textContent = s[k].toLocaleString();
}}, 1000);
</script></body></html>"""


def _figures(node) -> dict:
    m = node.metrics
    stored = sum(s.value for metric in m.accepted.collect() for s in metric.samples
                 if s.name.endswith("_total"))
    rejected = sum(s.value for metric in m.rejected.collect() for s in metric.samples
                   if s.name.endswith("_total"))
    dead = node.dead_letters.stats.added if node.dead_letters is not None else 0
    return {"rate": round(m.rate.rate()), "stored": int(stored), "rejected": int(rejected),
            "dead": int(dead)}


async def status_page(request: Request) -> HTMLResponse:
    node = request.app.state.node
    store = node.store.url.split("@")[-1]
    return HTMLResponse(PAGE.format(
        city=html.escape(node.pack.info.name), areas=len(node.pack.areas),
        devices=len(node.registry), store=html.escape(store.split("?")[0]),
        **{k: f"{v:,}" for k, v in _figures(node).items()},
    ))


async def status_json(request: Request):
    from cityops.api.errors import json_response

    return json_response(_figures(request.app.state.node))
