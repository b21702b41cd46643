"""Personal data at rest: sealed with the node's data key (AES-GCM), found by a keyed hash, never
on disk in the clear, in files only their owner can read."""

from __future__ import annotations

import os
import stat

import msgspec
import pytest

from cityops.domain.access import Role, Scope
from cityops.domain.citizens import Citizen, mask_id_number, mask_phone
from cityops.domain.incidents.workflow import Actor
from cityops.domain.privacy import mask_data, mask_text
from cityops.node import Node
from cityops.serve.citizens import Taken
from cityops.serve.pii import KeyFileError, Pii, WrongKey, load_key
from cityops.settings import Settings
from cityops.store.base import Record, open_store

PHONE, ID = "13812345678", "310115198001011234"
OPERATOR = Actor("k_op", Role.OPERATOR, Scope(), "agent")


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def on_disk(data_dir) -> bytes:
    """The database, its WAL and shared memory, as bytes."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("state.db*")))


def test_a_value_seals_and_opens_and_carries_its_mask(tmp_path) -> None:
    pii = Pii.from_file(tmp_path / "data.key")
    phone, number = pii.seal(PHONE, "phone"), pii.seal(ID, "id")
    assert PHONE not in phone and ID not in number
    assert pii.open(phone) == PHONE and pii.open(number) == ID
    assert pii.seal(PHONE, "phone") != phone  # a fresh nonce each time
    assert pii.open("not sealed") == "not sealed" and pii.seal("") == ""
    assert pii.seal(phone) == phone  # never sealed twice
    # What staff views show of it, without the key.
    assert mask_phone(phone) == "138****5678" and mask_id_number(number) == "310115********1234"
    assert mask_data({"phone": phone, "note": pii.seal(f"ring {PHONE}")}) == {
        "phone": "138****5678", "note": "ring 138****5678"}
    assert mask_text(number) == "310115********1234"
    # A masked value masked again stays readable.
    assert mask_phone("138****5678") == "138****5678"
    assert mask_id_number("310115********1234") == "310115********1234"

    other = Pii.from_file(tmp_path / "other.key")
    with pytest.raises(WrongKey):
        other.open(phone)
    tampered = phone[:12] + ("A" if phone[12] != "A" else "B") + phone[13:]
    with pytest.raises(WrongKey):
        pii.open(tampered)


def test_lookups_are_keyed_hashes(tmp_path) -> None:
    pii = Pii.from_file(tmp_path / "data.key")
    again = Pii.from_file(tmp_path / "data.key")
    other = Pii.from_file(tmp_path / "other.key")
    assert pii.lookup(ID) == again.lookup(ID) == pii.lookup(f" {ID.lower()} ")
    assert ID not in pii.lookup(ID)
    assert pii.lookup(ID) != other.lookup(ID)  # without the key a hash cannot be tested
    assert pii.lookup(ID) != pii.lookup("310115198001011235")


def test_the_key_file_is_made_once_and_private(tmp_path) -> None:
    path = tmp_path / "keys" / "data.key"
    key = load_key(path)
    assert len(key) == 32 and mode(path) == 0o600
    assert load_key(path) == key
    os.chmod(path, 0o644)
    assert load_key(path) == key and mode(path) == 0o600  # closed up again
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key(tmp_path / "missing.key", create=False)
    (tmp_path / "bad.key").write_text("hello")
    with pytest.raises(KeyFileError, match="not a CityOps data key"):
        load_key(tmp_path / "bad.key")


def test_the_same_record_decoded_with_and_without_the_key(tmp_path) -> None:
    pii = Pii.from_file(tmp_path / "data.key")
    doc = {"id": "c-1", "name": "Li", "phone": PHONE, "id_number": ID, "area": "990001001001",
           "answers": {"contact": f"call {PHONE}", "household": 3}, "at": 1763870400.5,
           "note": "nothing to hide"}
    rec = Record(kind="x", id="1", doc=msgspec.json.encode(doc))
    sealed = pii.seal_record(rec)
    raw = bytes(sealed.doc)
    assert PHONE.encode() not in raw and ID.encode() not in raw
    assert b'"area":"990001001001"' in raw and b"nothing to hide" in raw  # left as they were
    assert msgspec.json.decode(pii.open_record(sealed).doc) == doc
    plain = Record(kind="x", id="2", doc=b'{"n":"no digits here"}')
    assert pii.seal_record(plain) is plain and pii.open_record(plain) is plain


async def test_a_node_keeps_no_phone_or_id_number_on_disk(tmp_path, grid_pack,
                                                          live_node) -> None:
    data = tmp_path / "data"
    async with live_node(grid_pack, data, notify_url="memory:") as live:
        side = live.node.serve
        await side.citizens.register(Citizen(id="c-1", name="Li Wei", phone=PHONE,
                                             id_number=ID, area="990001001001"))
        await side.hotline.create(OPERATOR, type="help", title=f"Li calls from {PHONE}",
                                  content=f"ID card {ID} lost", phone=PHONE)
        await side.cabinets.create("cab-1", "Lobby", "Centre 1", 1)
        await side.cabinets.drop_off("cab-1", by="k", role="operator", phone=PHONE)
        # Read back clear by the services.
        held = await side.citizens.get("c-1")
        assert (held.phone, held.id_number) == (PHONE, ID)
        assert (await side.citizens.by_id_number(ID.lower())).id == "c-1"
        rec = await live.node.store.get_record("citizen", "c-1")
        assert rec.unique == side.pii.lookup(ID) and ID not in rec.unique
        # Written out: in the database and its WAL while the node runs ...
        disk = on_disk(data)
        assert disk and PHONE.encode() not in disk and ID.encode() not in disk
        assert mode(data / "state.db") == 0o600
        assert mode(data / "state.db-wal") == 0o600
        assert mode(data / "data.key") == 0o600
    # ... and after the last checkpoint.
    disk = on_disk(data)
    assert PHONE.encode() not in disk and ID.encode() not in disk


async def test_one_id_number_one_account(tmp_path, grid_pack, live_node) -> None:
    async with live_node(grid_pack, tmp_path / "data", notify_url="memory:") as live:
        citizens = live.node.serve.citizens
        li = Citizen(id="c-1", name="Li", id_number=ID)
        assert (await citizens.register(li))[1] is True
        with pytest.raises(Taken):
            await citizens.register(Citizen(id="c-2", name="Li", id_number=ID.lower()))
        assert (await citizens.register(li))[1] is False  # the same account: an update
        await citizens.register(Citizen(id="c-1", name="Li"))  # number removed
        assert (await citizens.register(Citizen(id="c-2", name="Li", id_number=ID)))[1]


async def test_a_node_with_another_key_refuses_the_store(tmp_path, grid_pack,
                                                         live_node) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    async with live_node(grid_pack, tmp_path / "a", store_url=url, notify_url="memory:") as a:
        await a.node.serve.citizens.register(Citizen(id="c-1", name="Li", phone=PHONE))
    other = Node(grid_pack, Settings(data_dir=tmp_path / "b", store_url=url,
                                     notify_url="memory:"))
    try:
        with pytest.raises(WrongKey, match="same key file"):
            await other.start()
    finally:
        await other.stop()  # what did start is stopped: no writer thread left behind
    # With the first node's key file it opens, and reads what was sealed.
    async with live_node(grid_pack, tmp_path / "b", store_url=url, notify_url="memory:",
                         data_key_file=tmp_path / "a" / "data.key") as b:
        assert (await b.node.serve.citizens.get("c-1")).phone == PHONE


async def test_a_store_without_the_sealer_shows_only_ciphertext(tmp_path, grid_pack,
                                                               live_node) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'state.db'}"
    async with live_node(grid_pack, tmp_path / "data", notify_url="memory:") as live:
        await live.node.serve.citizens.register(Citizen(id="c-1", name="Li", phone=PHONE,
                                                        id_number=ID))
    store = open_store(url)
    await store.open()
    try:
        raw = msgspec.json.decode((await store.get_record("citizen", "c-1")).doc)
    finally:
        await store.close()
    assert raw["phone"].startswith("pii:v1:") and raw["phone"].endswith(":138****5678")
    assert raw["id_number"].endswith(":310115********1234") and raw["name"] == "Li"
