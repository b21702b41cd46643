"""Issue 17 item 5: a million objects on the big screen. The server bins objects in H3 cells
kept current for the ones that moved, and sends each screen binary frames with only what
changed: bins at city scale, points in a small view."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import numpy as np
import pytest
from h3.api import basic_int as h3

from cityops.api import live_objects
from cityops.api.live_objects import (
    NEVER,
    Q,
    ObjectsFeed,
    ObjectsStream,
    decode_frame,
    encode_frame,
    frames,
    parse_bbox,
)
from cityops.api.errors import ApiError
from cityops.domain.access import Principal, Role, Scope
from cityops.domain.city import Vehicle
from cityops.domain.hexbins import BASE_RES, CellIndex, resolution_for_zoom

ADMIN = Principal("admin", Role.ADMIN, Scope())


def _walk(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    return rng.uniform(31.0, 31.2, n), rng.uniform(121.4, 121.6, n), rng


def test_cells_stay_exact_while_objects_move_and_few_are_asked_again() -> None:
    lat, lon, rng = _walk(20_000)
    index = CellIndex(len(lat))
    everyone = np.arange(len(lat))
    index.update(everyone, lat, lon)
    first = index.asked
    assert first == len(lat)
    for _ in range(5):  # about 2 m a step, every object, as trucks in traffic
        heading = rng.uniform(0, 2 * np.pi, len(lat))
        lat += 2e-5 * np.cos(heading)
        lon += 2e-5 * np.sin(heading)
        index.update(everyone, lat, lon)
    # Only objects that left their slack were asked of H3 again: a small share of them.
    assert index.asked - first < 0.2 * 5 * len(lat)
    wanted = np.array([h3.latlng_to_cell(a, b, BASE_RES) for a, b in zip(lat, lon)], np.uint64)
    held = np.array(index.base.ids, np.uint64)[index.row]
    assert (held == wanted).all()
    # A coarser bin is the base cell's H3 parent, and every object is counted once.
    rows, counts = index.counts(7)
    assert counts.sum() == len(lat)
    parents = index.cells(7)
    top = rows[np.argmax(counts)]
    assert counts.max() == sum(h3.cell_to_parent(int(c), 7) == parents.ids[top] for c in wanted)


def test_objects_without_a_fix_and_masked_ones_are_not_counted() -> None:
    lat, lon, _ = _walk(100)
    index = CellIndex(100)
    index.update(np.arange(50), lat[:50], lon[:50])
    assert index.counts(8)[1].sum() == 50
    mask = np.zeros(100, bool)
    mask[:10] = True
    assert index.counts(8, mask)[1].sum() == 10
    with pytest.raises(ValueError):
        index.counts(12)


def test_zoom_picks_hexagons_a_few_pixels_across() -> None:
    assert [resolution_for_zoom(z) for z in (3, 9, 10, 11, 12, 13, 20)] == [4, 7, 8, 8, 9, 9, 9]


def test_bbox_is_checked_and_named() -> None:
    assert parse_bbox("121.4,31.0,121.6,31.2") == (12_140_000, 3_100_000, 12_160_000, 3_120_000)
    assert parse_bbox(None) is None
    for bad in ("1,2,3", "a,b,c,d", "121.6,31,121.4,31.2", "0,-91,1,0"):
        with pytest.raises(ApiError) as caught:
            parse_bbox(bad)
        assert caught.value.status == 400 and caught.value.code == "invalid_bbox"


def test_a_frame_reads_back_as_typed_arrays() -> None:
    frame = encode_frame({"kind": "points"}, [("i", np.array([1, 2], "<u4")),
                                              ("role", np.array([3], "u1")),
                                              ("lat", np.array([-5], "<i4"))])
    assert len(frame) % 4 == 0
    header, arrays = decode_frame(frame)
    assert header["kind"] == "points" and header["arrays"][1] == ["role", "u1", 1]
    assert arrays["i"].tolist() == [1, 2] and arrays["role"].tolist() == [3]
    assert arrays["lat"].tolist() == [-5]


class World:
    """A feed over n objects at integer positions, moved as the hub moves them."""

    def __init__(self, n: int, roles=("bus", "muck_truck")) -> None:
        la, lo, self.rng = _walk(n)
        self.lat = np.round(la * Q).astype(np.int64)
        self.lon = np.round(lo * Q).astype(np.int64)
        self.feed = ObjectsFeed([roles[i % len(roles)] for i in range(n)])
        # Built without a loop of its own (async tests run one already): its only awaits
        # are the turns it gives the loop between chunks, which need no loop to step over.
        build = self.feed.build(self.lat, self.lon)
        with contextlib.suppress(StopIteration):
            while True:
                build.send(None)
        self.visible = np.ones(n, bool)

    def move(self, idx: np.ndarray, dlat: int = 3, dlon: int = 0) -> None:
        self.lat[idx] += dlat
        self.lon[idx] += dlon
        self.feed.advance(idx, self.lat, self.lon)

    def frame(self, stream: ObjectsStream):
        got = stream.frame(self.feed, self.lat, self.lon, self.visible, 0.0)
        return None if got is None else decode_frame(got)


def test_points_in_a_small_view_then_only_what_moved_entered_or_left() -> None:
    w = World(5_000)
    box = (12_145_000, 3_105_000, 12_150_000, 3_110_000)
    inside = np.flatnonzero((w.lat >= box[1]) & (w.lat <= box[3]) & (w.lon >= box[0])
                            & (w.lon <= box[2]))
    stream = ObjectsStream(ADMIN, ("admin",), box, 14.0)
    header, a = w.frame(stream)
    assert header["kind"] == "points" and header["full"] is True
    assert header["in_view"] == len(inside) and header["total"] == 5_000
    assert header["roles"] == {"bus": 2_500, "muck_truck": 2_500}
    assert sorted(a["i"].tolist()) == inside.tolist()
    assert (a["lat"] == w.lat[a["i"]]).all()
    assert [header["role_names"][r] for r in a["role"][:2]] == \
        [("bus", "muck_truck")[i % 2] for i in a["i"][:2]]
    assert w.frame(stream) is None  # nothing moved: nothing to send
    # Two objects in view move, one outside moves (not sent), one in view leaves it.
    outside = np.setdiff1d(np.arange(5_000), inside)[:1]
    w.move(np.concatenate([inside[:2], outside]))
    w.lat[inside[2]] = box[3] + 10
    w.feed.advance(inside[2:3], w.lat, w.lon)
    header, a = w.frame(stream)
    assert header["full"] is False
    assert a["i"].tolist() == inside[:2].tolist()
    assert a["lat"].tolist() == w.lat[inside[:2]].tolist()
    assert a["gone"].tolist() == [inside[2]]


def test_bins_at_city_scale_and_only_changed_counts_after(monkeypatch) -> None:
    monkeypatch.setattr(live_objects, "POINTS_MAX", 1_000)
    monkeypatch.setattr(live_objects, "POINTS_BACK", 900)
    w = World(5_000)
    stream = ObjectsStream(ADMIN, ("admin",), None, 9.0)
    header, a = w.frame(stream)
    assert header["kind"] == "bins" and header["res"] == 7 and header["full"] is True
    assert a["count"].sum() == 5_000 and len(a["new"]) == len(a["cell"])
    shapes = a["shape"].reshape(-1, 14)
    centre = w.feed.cells.cells(7).centers(a["new"][:1])[0]
    assert shapes[0, :2].tolist() == np.round(centre * Q).astype(int).tolist()
    # One object crosses into another res-7 cell: two counts change, nothing else is sent.
    cells = w.feed.cells
    one = 0
    before = cells.cells(7).ids[_row7(cells, one)]
    while cells.cells(7).ids[_row7(cells, one)] == before:
        w.move(np.array([one]), dlat=200)
    header, a = w.frame(stream)
    assert header["full"] is False and len(a["cell"]) == 2 and not len(a["gone"])
    assert a["count"].sum() <= 5_000
    # Zooming in changes the resolution: a full frame of finer bins.
    stream.zoom = 11.0
    header, a = w.frame(stream)
    assert header["res"] == 8 and header["full"] is True and a["count"].sum() == 5_000


def _row7(cells: CellIndex, obj: int) -> int:
    return int(np.asarray(cells._parent_row[7])[cells.row[obj]])


def test_many_objects_in_view_switch_to_bins_and_back_without_flicker(monkeypatch) -> None:
    monkeypatch.setattr(live_objects, "POINTS_MAX", 1_000)
    monkeypatch.setattr(live_objects, "POINTS_BACK", 900)
    w = World(5_000)
    stream = ObjectsStream(ADMIN, ("admin",), None, 12.0)
    assert w.frame(stream)[0]["kind"] == "bins"
    w.visible[:4_050] = False  # 950 left: under POINTS_MAX, not under POINTS_BACK
    w.move(np.arange(5_000))
    assert w.frame(stream)[0]["kind"] == "bins"
    w.visible[:4_200] = False
    w.move(np.arange(5_000))
    header, a = w.frame(stream)
    assert header["kind"] == "points" and header["full"] and len(a["i"]) == 800


def test_a_slow_client_gets_the_sum_of_what_it_missed() -> None:
    w = World(2_000)
    stream = ObjectsStream(ADMIN, ("admin",), None, 15.0)
    w.frame(stream)
    for step in range(5):  # five updates while the client was busy
        w.move(np.array([step, step + 1]))
    header, a = w.frame(stream)
    assert sorted(a["i"].tolist()) == list(range(6))
    assert w.feed.stats["objects_coalesced"] == 4


async def test_a_large_batch_is_looked_up_beside_the_loop_with_the_same_cells(monkeypatch) -> None:
    # The loop must keep answering while thousands of H3 look-ups run: the look-up is held
    # until a task on the loop has run, which can only happen if it runs elsewhere.
    aside, sync = World(20_000), World(20_000)
    everyone = np.arange(20_000)
    ran_meanwhile = asyncio.Event()
    looked_up = []

    def lookup(lat, lon):
        assert asyncio.run_coroutine_threadsafe(ran_meanwhile.wait(), loop).result(5) is True
        looked_up.append(len(lat))
        return real_lookup(lat, lon)

    loop = asyncio.get_running_loop()
    real_lookup = live_objects.lookup
    monkeypatch.setattr(live_objects, "lookup", lookup)
    for w in (aside, sync):
        w.lat += 40  # 40 m north: most objects leave their slack
    moving = asyncio.create_task(aside.feed.advance_aside(everyone, aside.lat, aside.lon))
    await asyncio.sleep(0)
    ran_meanwhile.set()
    await moving
    assert looked_up and looked_up[0] >= live_objects.LOOKUP_ASIDE_MIN
    monkeypatch.setattr(live_objects, "lookup", real_lookup)
    sync.feed.advance(everyone, sync.lat, sync.lon)
    held = np.array(aside.feed.cells.base.ids, np.uint64)[aside.feed.cells.row]
    assert (held == np.array(sync.feed.cells.base.ids, np.uint64)[sync.feed.cells.row]).all()
    assert aside.feed.version == sync.feed.version


async def test_the_stream_waits_for_moves_and_ends_when_the_key_goes() -> None:
    w = World(1_000)
    stream = ObjectsStream(ADMIN, ("admin",), None, 15.0)
    good = [True]

    async def recheck() -> bool:
        return good[0]

    gen = frames(w.feed, stream, lambda: (w.lat, w.lon, w.visible, 0.0), recheck, 60.0)
    first = decode_frame(await anext(gen))
    assert first[0]["full"] and len(first[1]["i"]) == 1_000
    assert stream in w.feed.streams
    pending = asyncio.ensure_future(anext(gen))
    await asyncio.sleep(0)
    assert not pending.done()  # nothing moved: the stream waits
    w.move(np.array([7]))
    header, a = decode_frame(await pending)
    assert a["i"].tolist() == [7]
    good[0] = False
    w.move(np.array([8]))
    header, _ = decode_frame(await anext(gen))
    assert header["kind"] == "closed"
    with pytest.raises(StopAsyncIteration):
        await anext(gen)
    assert stream not in w.feed.streams


async def test_the_api_answers_a_view_as_json_within_the_key_scope(tmp_path, city, live_node):
    devices = [d for d in city.devices if d.kind == "gps"]
    pack = msgspec.structs.replace(city, vehicles=[
        Vehicle(f"truck-{i}", f"沪B·{i:05d}", "muck_truck", d.id) for i, d in enumerate(devices)])
    async with live_node(pack, tmp_path / "data", notify_url="memory:") as live:
        device = live.client(await live.key("device"))
        readings = [{"device_id": d.id, "ts": live.node.clock() - 10, "values": {
            "lat": 31.15, "lon": 121.45 if k == 0 else 121.55}} for k, d in enumerate(devices)]
        r = await device.post("/api/v1/readings", json=readings)
        assert r.status_code == 202
        admin = live.client(await live.key("admin"))
        for _ in range(200):  # the history stores the batch behind the answer
            body = (await admin.get("/api/v1/live/objects", params={"zoom": 15})).json()
            if body.get("total") == len(devices):
                break
            await asyncio.sleep(0.02)
        assert body["kind"] == "points" and sorted(body["i"]) == list(range(len(devices)))
        assert body["roles"] == {"muck_truck": len(devices)}
        box = (await admin.get("/api/v1/live/objects", params={
            "bbox": "121.4,31.1,121.5,31.2", "zoom": 15})).json()
        assert box["i"] == [0] and box["lat"] == [3_115_000]
        # A key of town 1 sees only the truck in town 1 (the others stand in town 2).
        town = live.client(await live.key("operator", "990001001"))
        mine = (await town.get("/api/v1/live/objects")).json()
        assert mine["total"] == 1 and mine["i"] == [0]
        bad = await admin.get("/api/v1/live/objects", params={"bbox": "1,2,3"})
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_bbox"
        bad = await admin.get("/api/v1/live/objects", params={"zoom": "99"})
        assert bad.status_code == 400
        # The screen's own event stream leaves the vehicles to this route.
        snap = (await admin.get("/api/v1/live", params={"vehicles": "false"})).json()
        assert snap["vehicles_listed"] is False and snap["vehicles_total"] == 3


def test_unplaced_objects_are_never_drawn() -> None:
    w = World(10)
    w.lat[3] = NEVER
    stream = ObjectsStream(ADMIN, ("admin",), None, 15.0)
    header, a = w.frame(stream)
    assert 3 not in a["i"].tolist() and header["total"] == 9


def test_a_large_fleet_is_read_once_a_second_though_ticks_come_late() -> None:
    # Simulated time: the hub's loop sleeps 0.25 s, then a tick that reads a million trucks
    # takes 0.3 s of work, one that does not 0.05 s.
    from cityops.api.live import next_fleet_read

    now, due, reads = 0.0, -float("inf"), []
    while now < 30.0:
        now += 0.25
        if now >= due:
            due = next_fleet_read(due, now)
            reads.append(now)
            now += 0.3
        else:
            now += 0.05
    assert len(reads) in (29, 30)  # one a second, however late each tick comes
    # A read a whole period late starts again from then rather than catching up in a burst.
    assert next_fleet_read(10.0, 12.5) == 13.5 and next_fleet_read(10.0, 10.4) == 11.0
