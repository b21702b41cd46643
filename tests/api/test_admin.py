"""Administration over HTTP: keys made, listed, rotated and revoked within the maker's scope;
devices registered from a CSV file; grid cells given to another owner, which new cases are
routed by and which outlives a restart in each store. Every change is in the audit trail, and
every out-of-scope change is refused with 403 and nothing stored."""

from __future__ import annotations

import time

import pytest


TOWN_A, TOWN_B = "990001001", "990001002"
VILLAGE_A = "990001001001"
HERE = {"lat": 31.15, "lon": 121.45}  # town A, village 1 of the grid city


@pytest.fixture
async def node(tmp_path, city, live_node):
    async with live_node(city, tmp_path / "d", notify_url="memory:") as live:
        live.admin = await live.key("admin")
        yield live


async def actions(live, subject):
    return [(e.action, e.actor) for e in await live.node.store.list_audit(subject=subject)]


async def me(live, secret):
    async with live.client(secret) as c:
        return await c.get("/api/v1/me")


async def test_keys_made_listed_rotated_and_revoked_each_audited(node) -> None:
    admin_id = (await me(node, node.admin)).json()["key"]
    async with node.client(node.admin) as c:
        r = await c.post("/api/v1/keys", json={"role": "operator", "scope": TOWN_A,
                                               "name": "night shift", "expires": "30d",
                                               "reason": "new operator"})
        assert r.status_code == 201, r.text
        made = r.json()
        secret, kid = made["secret"], made["key"]["id"]
        assert secret.startswith("co_") and made["key"]["scope"] == TOWN_A
        assert made["key"]["expires_at"] > time.time() + 29 * 86400
        assert (await me(node, secret)).json()["scope"] == TOWN_A

        listed = (await c.get("/api/v1/keys")).json()["items"]
        mine = next(k for k in listed if k["id"] == kid)
        # The secret is in the answer that made it, never again.
        assert "secret" not in mine and secret not in str(listed) and mine["active"]

        r = await c.post(f"/api/v1/keys/{kid}/rotate", json={"reason": "leaked"})
        assert r.status_code == 201, r.text
        new_secret, new_id = r.json()["secret"], r.json()["key"]["id"]
        assert r.json()["replaces"] == kid and r.json().get("old_until") is None
        assert r.json()["key"]["name"] == "night shift"
        assert (await me(node, secret)).status_code == 401  # at once on this node
        assert (await me(node, new_secret)).status_code == 200

        r = await c.post(f"/api/v1/keys/{kid}/rotate", json={})
        assert r.status_code == 409 and "revoked" in r.json()["error"]

        r = await c.request("DELETE", f"/api/v1/keys/{new_id}", json={"reason": "left"})
        assert r.status_code == 200 and r.json()["revoked"] and not r.json()["active"]
        assert (await me(node, new_secret)).status_code == 401

        r = await c.post("/api/v1/keys", json={"role": "mayor"})
        assert r.status_code == 400 and "role 'mayor'" in r.json()["error"]
        r = await c.post("/api/v1/keys", json={"role": "operator", "expires": "yesterday"})
        assert r.status_code == 400 and "expires" in r.json()["error"]
        assert (await c.request("DELETE", "/api/v1/keys/k_nope")).status_code == 404

    assert await actions(node, f"key:{kid}") == [("key.rotate", admin_id),
                                                 ("key.create", admin_id)]
    assert await actions(node, f"key:{new_id}") == [("key.revoke", admin_id),
                                                    ("key.create", admin_id)]


async def test_an_area_admin_makes_and_changes_keys_only_within_its_area(node) -> None:
    town_admin = await node.key("admin", TOWN_A, "town A admin")
    async with node.client(node.admin) as c:
        theirs = (await c.post("/api/v1/keys", json={"role": "operator", "scope": TOWN_B})
                  ).json()["key"]["id"]
    before = await node.node.store.list_keys()
    async with node.client(town_admin) as c:
        r = await c.post("/api/v1/keys", json={"role": "admin", "scope": VILLAGE_A})
        assert r.status_code == 201, r.text  # narrower, any role
        ours = r.json()["key"]["id"]
        for scope in (TOWN_B, None, "990001", "sanitation"):
            r = await c.post("/api/v1/keys", json={"role": "operator", "scope": scope})
            assert r.status_code == 403, (scope, r.text)
            assert f"outside this key's scope {TOWN_A}" in r.json()["error"]
        r = await c.request("DELETE", f"/api/v1/keys/{theirs}")
        assert r.status_code == 403 and "lies outside" in r.json()["error"]
        r = await c.post(f"/api/v1/keys/{theirs}/rotate", json={})
        assert r.status_code == 403
        listed = {k["id"] for k in (await c.get("/api/v1/keys")).json()["items"]}
        assert ours in listed and theirs not in listed
        assert all(k.scope.startswith(TOWN_A) for k in await node.node.store.list_keys()
                   if k.id in listed)
    after = await node.node.store.list_keys()
    assert [k for k in after if k.id != ours] == before  # nothing else made or changed
    operator = await node.key("operator")
    async with node.client(operator) as c:
        assert (await c.post("/api/v1/keys", json={"role": "operator"})).status_code == 403


CSV = ("id,kind,lat,lon,name,owner,vendor\n"
       "noise-new-1,noise,31.151,121.451,Gate noise meter,environment,Acme\n"
       "noise-new-2,noise,31.152,121.452,,,\n")


async def test_devices_imported_from_csv_all_or_nothing(node) -> None:
    town_b = await node.key("operator", TOWN_B)
    async with node.client(node.admin) as c:
        bad = CSV + "noise-new-3,noise,north,121.45,,,\n"
        r = await c.post("/api/v1/devices/import", content=bad.encode(),
                         headers={"Content-Type": "text/csv"})
        assert r.status_code == 400 and r.json()["error"].startswith("line 4:")
        assert node.node.registry.get("noise-new-1") is None
        wide = "id,kind,lat,lon," + ",".join(f"m{i}" for i in range(51)) + "\n"
        wide += "w-1,noise,31.15,121.45," + ",".join("x" * 51) + "\n"
        r = await c.post("/api/v1/devices/import", content=wide.encode())
        assert r.status_code == 400 and "at most 50 extra columns" in r.json()["error"]
        r = await c.post("/api/v1/devices/import", content=b"id,kind\nx,noise\n")
        assert r.status_code == 400 and "lat, lon" in r.json()["error"]
        r = await c.post("/api/v1/devices/import", content=CSV.encode())
        assert r.status_code == 201, r.text
        assert r.json() == {"registered": 2, "new": 2, "ids": ["noise-new-1", "noise-new-2"]}
    one = node.node.registry.get("noise-new-1")
    assert one.areas.village == VILLAGE_A and one.meta == {"vendor": "Acme"}
    assert one.owner == "environment"
    assert [a for a, _ in await actions(node, "device:noise-new-2")] == ["device.register"]
    async with node.client(town_b) as c:
        r = await c.post("/api/v1/devices/import", content=CSV.encode())
        assert r.status_code == 403 and r.json()["error"].startswith("line 2:")
    # One device registered the ordinary way is audited too.
    async with node.client(node.admin) as c:
        r = await c.post("/api/v1/devices", json={"id": "noise-one", "kind": "noise", **HERE})
        assert r.status_code == 201, r.text
    assert [a for a, _ in await actions(node, "device:noise-one")] == ["device.register"]


async def _dispatch_here(c, category: str) -> list[str]:
    """A case here dispatched to city management: the one who keeps the ground takes it.
    Each call files another category, so the cases are not merged into one."""
    r = await c.post("/api/v1/incidents", json={"category": category, **HERE})
    assert r.status_code == 201, r.text
    path = f"/api/v1/incidents/{r.json()['id']}"
    assert (await c.post(f"{path}/actions/register", json={})).status_code == 200
    r = await c.post(f"{path}/actions/dispatch", json={"departments": ["city_management"]})
    assert r.status_code == 200, r.text
    return [o["department"] for o in r.json()["orders"]]


async def test_a_cell_given_to_a_department_takes_new_cases(node) -> None:
    cell = node.node.city.cell_of(HERE["lat"], HERE["lon"])
    town_b = await node.key("operator", TOWN_B)
    async with node.client(node.admin) as c:
        r = await c.get("/api/v1/cells/at", params=HERE)
        assert r.status_code == 200 and r.json()["cell"] == cell
        assert r.json()["owner"] == f"station:{VILLAGE_A}" and r.json()["source"] == "territory"
        assert len(r.json()["boundary"]) == 6
        assert await _dispatch_here(c, "event.sanitation.exposed_garbage") == ["city_management"]

        r = await c.put(f"/api/v1/cells/{cell}/owner",
                        json={"owner": "sanitation", "reason": "market street"})
        assert r.status_code == 200, r.text
        assert r.json()["owner"] == "sanitation" and r.json()["source"] == "override"
        assert await _dispatch_here(c, "event.street_order.street_vending") == ["sanitation"]
        listed = (await c.get("/api/v1/cells", params={"area": TOWN_A})).json()["items"]
        assert [(i["cell"], i["owner"]) for i in listed] == [(cell, "sanitation")]

        r = await c.put(f"/api/v1/cells/{cell}/owner", json={"owner": "nobody", "reason": "x"})
        assert r.status_code == 400 and "not one of the city's departments" in r.json()["error"]
        r = await c.put("/api/v1/cells/zz/owner", json={"owner": "", "reason": "x"})
        assert r.status_code == 404
        assert (await c.get("/api/v1/cells/8a2a1072b59ffff")).status_code == 400

    async with node.client(town_b) as c:
        r = await c.put(f"/api/v1/cells/{cell}/owner", json={"owner": "", "reason": "mine"})
        assert r.status_code == 403
        assert f"village {VILLAGE_A}, outside this key's scope {TOWN_B}" in r.json()["error"]
        assert (await c.get("/api/v1/cells")).json()["items"] == []
    assert node.node.city.owner_of_cell(cell) == "sanitation"
    for department, shown in (("sanitation", [cell]), ("police", [])):
        async with node.client(await node.key("department", department)) as c:
            items = (await c.get("/api/v1/cells")).json()["items"]
            assert [i["cell"] for i in items] == shown
            r = await c.put(f"/api/v1/cells/{cell}/owner", json={"owner": "", "reason": "x"})
            assert r.status_code == 403  # seeing its ground is not giving it away

    async with node.client(node.admin) as c:
        r = await c.put(f"/api/v1/cells/{cell}/owner", json={"owner": None, "reason": "back"})
        assert r.json()["source"] == "territory"
    admin_id = (await me(node, node.admin)).json()["key"]
    trail = await node.node.store.list_audit(subject=f"cell:{cell}")
    assert [(e.action, e.actor, e.before, e.after) for e in trail] == [
        ("cell.owner", admin_id, "sanitation", f"station:{VILLAGE_A} (the city pack's)"),
        ("cell.owner", admin_id, f"station:{VILLAGE_A}", "sanitation")]


async def test_a_cells_owner_is_kept_in_each_store(tmp_path, city, live_node,
                                                   each_store_url) -> None:
    store_url = each_store_url
    async with live_node(city, tmp_path / "d", store_url=store_url) as live:
        cell = live.node.city.cell_of(HERE["lat"], HERE["lon"])
        async with live.client(await live.key("admin")) as c:
            r = await c.put(f"/api/v1/cells/{cell}/owner",
                            json={"owner": "water_affairs", "reason": "pumping station"})
            assert r.status_code == 200, r.text
        assert await live.node.store.load_cell_owners() == {cell: "water_affairs"}
        assert [e.action for e in await live.node.store.list_audit(subject=f"cell:{cell}")] \
            == ["cell.owner"]
    if store_url.startswith("memory:"):
        return  # the memory store lives and dies with its node
    async with live_node(city, tmp_path / "d", store_url=store_url) as again:
        assert again.node.city.owner_of_cell(cell) == "water_affairs"
        async with again.client(await again.key("operator")) as c:
            r = await c.get(f"/api/v1/cells/{cell}")
            assert r.json()["owner"] == "water_affairs" and r.json()["source"] == "override"


def test_the_cli_makes_keys_through_the_same_module_and_is_audited(tmp_path) -> None:
    """`cityops keys` and the API share cityops.keyadmin: the CLI's changes land in the same
    audit trail, as the login that ran them."""
    import asyncio

    from typer.testing import CliRunner

    from cityops.cli.main import app
    from cityops.store.base import open_store

    runner = CliRunner()
    data = ["--data", str(tmp_path)]
    made = runner.invoke(app, ["keys", "create", "--role", "operator", "--scope", TOWN_A, *data])
    assert made.exit_code == 0, made.output
    kid = next(w for w in made.output.split() if w.startswith("k_"))
    rotated = runner.invoke(app, ["keys", "rotate", kid, *data])
    assert rotated.exit_code == 0, rotated.output
    again = runner.invoke(app, ["keys", "rotate", kid, *data])
    assert again.exit_code != 0 and "revoked" in again.output

    async def trail():
        store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
        await store.open()
        try:
            return await store.list_audit(subject=f"key:{kid}")
        finally:
            await store.close()

    entries = asyncio.run(trail())
    assert [e.action for e in entries] == ["key.rotate", "key.create"]
    assert all(e.actor.startswith("cli") for e in entries)
    assert "co_" not in repr(entries)  # no secret in the trail


@pytest.mark.parametrize(("inner", "outer", "within"), [
    ("990001001001", "990001001", True), ("990001001", "990001001", True),
    ("990001002", "990001001", False), ("*", "990001001", False),
    ("sanitation", "990001001", False), ("990001001", "sanitation", False),
    ("sanitation", "sanitation", True), ("police", "sanitation", False),
    ("*", "*", True), ("sanitation", "*", True)])
def test_a_scope_lies_within_another_only_when_it_is_narrower(inner, outer, within) -> None:
    from cityops.domain.access import Scope
    from cityops.keyadmin import scope_within

    assert scope_within(Scope.parse(inner), Scope.parse(outer)) is within


async def test_another_node_takes_a_cells_new_owner_from_the_store(city) -> None:
    """What a cluster node does as it follows the store (cluster/compose.py): a change made
    through one node's API reaches the other's routing table."""
    from cityops.cell_owners import CellOwners
    from cityops.domain.geo import CityMap
    from cityops.store.base import open_store

    store = open_store("memory://")
    await store.open()
    here, there = CityMap.from_pack(city), CityMap.from_pack(city)
    mine, theirs = CellOwners(here, city.cell_owners), CellOwners(there, city.cell_owners)
    cell = here.cell_of(HERE["lat"], HERE["lon"])
    await mine.assign(store, cell, "transport", actor="k_test", reason="road works")
    assert here.owner_of_cell(cell) == "transport"
    assert there.owner_of_cell(cell) == f"station:{VILLAGE_A}"
    assert await theirs.refresh(store) and there.owner_of_cell(cell) == "transport"
    assert not await theirs.refresh(store)  # nothing new: the table is left as it is
    await mine.assign(store, cell, None, actor="k_test", reason="done")
    assert await theirs.refresh(store) and there.owner_of_cell(cell) == f"station:{VILLAGE_A}"
    await store.close()
