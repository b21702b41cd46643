"""History import over HTTP: admins only, streamed to disk, bounded, idempotent, the rejects
downloadable; with replay, what the rules find in the past is recorded as historical alerts
and opens no case."""

from __future__ import annotations

import csv
import io

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from cityops.packs.grid import generate as grid_city

NIGHT = 1_559_397_600  # 2019-06-01 22:00 in Shanghai (UTC+8), epoch seconds


def _loud_night(device: str) -> str:
    """An hour of one-minute readings of a residential meter at 70 dB(A) at night, with
    a bad line in the middle."""
    lines = ["device_id,ts,value"]
    for minute in range(60):
        lines.append(f"{device},{NIGHT + 60 * minute},{'n/a' if minute == 30 else 70}")
    return "\n".join(lines) + "\n"


async def test_admins_import_over_http_and_the_past_is_replayed(tmp_path, live_node):
    city = grid_city(devices={"noise": 3})
    device = msgspec.structs.replace(city.devices[0], meta={"setting": "residential"})
    city = msgspec.structs.replace(city, devices=[device, *city.devices[1:]])
    async with live_node(city, tmp_path / "data") as live:
        admin = await live.key("admin")
        operator = await live.key("operator")
        body = _loud_night(device.id).encode()
        async with live.client(operator) as client:
            refused = await client.post("/api/v1/history/import?format=csv", content=body)
            assert refused.status_code == 403
        async with live.client(admin) as client:
            unknown = await client.post("/api/v1/history/import", content=body)
            assert unknown.status_code == 415
            answer = await client.post("/api/v1/history/import?format=csv&replay=true",
                                       content=body, headers={"content-type": "text/csv"})
            assert answer.status_code == 200, answer.text
            result = answer.json()
            assert (result["rows"], result["stored"], result["rejected"]) == (60, 59, 1)
            assert result["first_rejects"][0] == {"line": 32, "column": "value", "value": "n/a",
                                                  "reason": "value 'n/a' is not a number"}
            rejects = await client.get(result["rejects"])
            assert rejects.status_code == 200
            rows = list(csv.DictReader(io.StringIO(rejects.text)))
            assert [r["line"] for r in rows] == ["32"]
            again = await client.post("/api/v1/history/import?format=csv", content=body)
            assert again.json()["already_imported"] is True
            listed = (await client.get("/api/v1/history/imports")).json()["items"]
            assert [i["stored"] for i in listed] == [59]
            back = await client.get(f"/api/v1/devices/{device.id}/readings",
                                    params={"from": str(NIGHT), "to": str(NIGHT + 3600)})
            assert len(back.json()["items"]) == 59
            # 70 dB(A) for an hour at night: the night rule fired then, recorded as history.
            assert result["historical_alerts"] >= 1
            alerts = (await client.get("/api/v1/alerts")).json()["items"]
            night = [a for a in alerts if a["rule"] == "noise.night_residential"]
            assert len(night) == 1
            assert night[0]["historical"] and not night[0]["active"]
            # Raised once the level had lasted the rule's 10 minutes, as it would have live.
            assert NIGHT + 9 * 60 <= night[0]["first_seen"] <= NIGHT + 11 * 60
            cases = (await client.get("/api/v1/incidents")).json()["items"]
            assert cases == []  # the past is recorded, not dispatched


async def test_an_import_body_is_bounded_and_parquet_is_taken(tmp_path, live_node):
    city = grid_city(devices={"noise": 2})
    device = city.devices[0].id
    async with live_node(city, tmp_path / "data", max_import_bytes=10_000) as live:
        admin = await live.key("admin")
        async with live.client(admin) as client:
            big = b"device_id,ts,value\n" + b"x" * 20_000
            too_big = await client.post("/api/v1/history/import?format=csv", content=big)
            assert too_big.status_code == 413
            assert "10,000" in too_big.json()["error"]
            sink = io.BytesIO()
            pq.write_table(pa.table({"device_id": [device] * 3, "ts": [NIGHT, NIGHT + 60,
                                                                       NIGHT + 120],
                                     "value": [50.0, 51.0, 52.0]}), sink)
            answer = await client.post(
                "/api/v1/history/import", content=sink.getvalue(),
                headers={"content-type": "application/vnd.apache.parquet"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["stored"] == 3
            bad_map = await client.post("/api/v1/history/import?format=csv&map=nothing",
                                        content=b"a,b\n1,2\n")
            assert bad_map.status_code == 400 and "OLD:NEW" in bad_map.json()["error"]
            no_ts = await client.post("/api/v1/history/import?format=csv",
                                      content=b"a,b\n1,2\n")
            assert no_ts.status_code == 400 and "no `ts` column" in no_ts.json()["error"]
