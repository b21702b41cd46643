"""Every error body carries a stable `code` beside its English message: the pages translate the
code, a client branches on it. The status gives one where the error names none; the route layer
and a domain error (its `code` attribute) name a more precise one."""

from __future__ import annotations

import json

import pytest

from cityops.api.errors import CODE_OF_STATUS, ApiError, error_response
from cityops.api.route import _code

LOCALES = "src/cityops/web/static/locales"


def test_the_status_gives_the_code_when_none_is_named() -> None:
    assert ApiError(404, "no incident 'x'").code == "not_found"
    assert ApiError(409, "refused", code="order_closed").code == "order_closed"
    assert ApiError(418, "teapot").code == "client_error"
    body = json.loads(error_response(503, "busy", headers={"Retry-After": "1"}).body)
    assert body == {"error": "busy", "code": "unavailable"}


def test_a_code_is_plain_lower_snake_case() -> None:
    with pytest.raises(ValueError, match="lower_snake_case"):
        ApiError(400, "bad", code="Bad Thing")


def test_a_domain_errors_own_code_is_used_only_when_plain() -> None:
    class Refused(Exception):
        code = "order_closed"

    class Numbered(Exception):
        code = 409  # Open311's errors number their codes: not a translation key

    assert _code(Refused()) == "order_closed"
    assert _code(Numbered()) is None
    assert _code(ValueError()) is None


def test_every_status_code_is_translated() -> None:
    # A code a page can meet with no translation would show English on a Chinese page.
    for lng in ("en", "zh-CN"):
        with open(f"{LOCALES}/{lng}/errors.json", encoding="utf-8") as f:
            have = json.load(f)
        missing = [c for c in CODE_OF_STATUS.values() if c not in have]
        assert not missing, (lng, missing)


async def test_answers_carry_the_code(live) -> None:
    op = await live.key("operator")
    scoped = await live.key("operator", scope="990001001")
    async with live.client(op) as c:
        r = await c.get("/api/v1/incidents/no-such-case")
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        r = await c.get("/api/v1/incidents?limit=abc")
        assert r.status_code == 400 and r.json()["code"] == "invalid_query"
        assert "limit" in r.json()["error"]  # the English message still names the field
        r = await c.post("/api/v1/citizens", content=b"{not json",
                         headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == "not_json"
        r = await c.post("/api/v1/citizens", content=b"{}",
                         headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == "invalid_input"
    async with live.client(None) as c:
        r = await c.get("/api/v1/incidents")
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    async with live.client(scoped) as c:
        r = await c.get("/api/v1/audit")
        assert r.status_code == 403 and r.json()["code"] == "city_wide_data"


async def test_names_in_both_languages(live) -> None:
    op = await live.key("operator")
    async with live.client(op) as c:
        names = (await c.get("/api/v1/names")).json()
        areas = (await c.get("/api/v1/areas.geojson")).json()
    assert names["city"] == {"name": "Grid City", "names": {"zh-CN": "网格市"}}
    police = next(d for d in names["departments"] if d["code"] == "police")
    assert police == {"code": "police", "name": "Police", "names": {"zh-CN": "公安"}}
    fire = next(c for c in names["categories"] if c["code"] == "event.emergency.fire")
    assert fire["name"] == "Fire" and fire["names"] == {"zh-CN": "火灾"}
    # Categories the scenario packs raise and the city's table lacks, as the packs name them.
    crowd = next(c for c in names["categories"] if c["code"] == "event.public_safety.crowding")
    assert crowd == {"code": "event.public_safety.crowding", "name": "Crowd gathering",
                     "names": {"zh-CN": "人群聚集"}}
    assert len({c["code"] for c in names["categories"]}) == len(names["categories"])
    town = next(f for f in areas["features"] if f["id"] == "990001001")
    assert town["properties"]["name"] == "Town 1"
    assert town["properties"]["names"] == {"zh-CN": "第1街镇"}
