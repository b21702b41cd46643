"""Smart filing cabinets on the records store.

Records: "cabinet" (the cabinet and which item is in each compartment), "cabinet_item" (one
per drop-off; while the code works its unique key is "<cabinet>:<code hash>", so two waiting
items of a cabinet never share a code and a code is found without trying every item; the key
is dropped when the item leaves), "cabinet_guard" (wrong codes per cabinet and caller, and
per cabinet from everyone: "<cabinet>|<caller>", "<cabinet>|*"), "cabinet_drops" (when each
citizen dropped off within the last day, id the citizen).

Saves are version-checked: two drop-offs never get one compartment, and two pick-ups with
one code never both open it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable

import msgspec

from cityops.domain import cabinets as rules
from cityops.domain.cabinets import Cabinet, Drops, Guard, Item, ItemStatus
from cityops.domain.incidents.workflow import Refused
from cityops.serve.notices import tell_all
from cityops.store.base import DuplicateKey, Record, StaleVersion, Store
from cityops.store.update import RecordDecision, UpdateGaveUp, update_record

KIND = "cabinet"
ITEM = "cabinet_item"
GUARD = "cabinet_guard"
DROPS = "cabinet_drops"
RETRIES = 8


class NotFound(LookupError):
    pass


class Invalid(ValueError):
    pass


class Locked(Exception):
    """Too many wrong codes: try again in `retry_after` seconds (HTTP 429)."""

    def __init__(self, retry_after: float, who: str) -> None:
        super().__init__(f"too many wrong codes {who}; try again in "
                         f"{max(1, round(retry_after))} s")
        self.retry_after = retry_after


class WrongCode(Exception):
    """No waiting item of the cabinet has this code (HTTP 403)."""

    def __init__(self, attempts_left: int) -> None:
        super().__init__("wrong or already used pickup code")
        self.attempts_left = attempts_left


class Picked(msgspec.Struct):
    item: Item
    compartment: int


class CabinetService:
    def __init__(self, store: Store, *, now: Callable[[], float] = time.time, notifier=None,
                 citizens=None) -> None:
        self.store = store
        self.now = now
        self.notifier = notifier
        self.citizens = citizens

    # -- cabinets ----------------------------------------------------------------------------

    async def create(self, cabinet_id: str, name: str, centre: str,
                     compartments: int | list[str], *, area: str = "",
                     address: str = "") -> Cabinet:
        now = self.now()
        cabinet = rules.new_cabinet(cabinet_id, name, centre, compartments,
                                    salt=secrets.token_hex(16), area=area, address=address,
                                    now=now)
        try:
            await self.store.put_record(self._cabinet_record(cabinet, now))
        except DuplicateKey:
            raise Refused(f"cabinet {cabinet_id} exists") from None
        return cabinet

    @staticmethod
    def _cabinet_record(cabinet: Cabinet, now: float) -> Record:
        return Record(kind=KIND, id=cabinet.id, doc=msgspec.json.encode(cabinet),
                      owner=cabinet.area, status="active", created=cabinet.created, updated=now)

    async def get(self, cabinet_id: str) -> tuple[Cabinet, int]:
        rec = await self.store.get_record(KIND, cabinet_id)
        if rec is None:
            raise NotFound(f"no cabinet {cabinet_id!r}")
        return msgspec.json.decode(rec.doc, type=Cabinet), rec.version

    async def list(self, limit: int = 1000) -> list[Cabinet]:
        recs = await self.store.find_records(KIND, limit=limit)
        return sorted((msgspec.json.decode(r.doc, type=Cabinet) for r in recs),
                      key=lambda c: c.id)

    async def _update_cabinet(self, cabinet_id: str,
                              change: Callable[[Cabinet], Cabinet | None]) -> Cabinet | None:
        def step(rec: Record | None) -> RecordDecision[Cabinet | None]:
            if rec is None:
                raise NotFound(f"no cabinet {cabinet_id!r}")
            changed = change(msgspec.json.decode(rec.doc, type=Cabinet))
            if changed is None:
                return None, None
            return self._cabinet_record(changed, self.now()), changed

        try:
            return await update_record(self.store, KIND, cabinet_id, step, tries=RETRIES)
        except UpdateGaveUp:
            raise Refused(f"cabinet {cabinet_id} is busy; try again") from None

    # -- items -------------------------------------------------------------------------------

    @staticmethod
    def _item_record(item: Item, now: float) -> Record:
        waiting = item.status is ItemStatus.WAITING
        live = item.status in (ItemStatus.WAITING, ItemStatus.RETURN_DUE)
        owner = item.recipient_citizen or item.recipient_department
        return Record(kind=ITEM, id=item.id, doc=msgspec.json.encode(item), owner=owner,
                      status=item.status.value, due=item.expires if waiting else None,
                      unique=f"{item.cabinet_id}:{item.code_hash}" if live else None,
                      created=item.dropped_at, updated=now)

    async def get_item(self, item_id: str) -> tuple[Item, int]:
        rec = await self.store.get_record(ITEM, item_id)
        if rec is None:
            raise NotFound(f"no cabinet item {item_id!r}")
        return msgspec.json.decode(rec.doc, type=Item), rec.version

    async def drop_off(self, cabinet_id: str, *, by: str, role: str, description: str = "",
                       recipient_citizen: str = "", recipient_department: str = "",
                       phone: str = "", size: str | None = None,
                       citizen: str = "") -> tuple[Item, str]:
        """Returns the item and its pickup code: the only time the code exists outside the
        SMS. The code for a citizen goes to their registered phone, never to one typed in.
        `citizen`: who drops it off when that is a citizen, held to their share of drop-offs
        (HeldLimit, DailyLimit)."""
        if recipient_citizen and self.citizens is not None:
            if phone:
                raise Invalid("the code goes to the recipient citizen's registered phone: "
                              "give no phone with a recipient citizen")
            held = await self.citizens.get(recipient_citizen)
            if held is None:
                raise Invalid(f"citizen {recipient_citizen!r} is not registered")
            phone = held.phone
        item_id = "it-" + secrets.token_hex(6)
        placed: list[int] = []

        def occupy(cabinet: Cabinet) -> Cabinet:
            changed, no = rules.place(cabinet, item_id, size, by=citizen)
            placed[:] = [no]
            return changed

        counted = await self._count_drop(citizen) if citizen else None
        try:
            cabinet = await self._update_cabinet(cabinet_id, occupy)
        except Exception:
            if counted is not None:
                await self._uncount_drop(citizen, counted)
            raise
        assert cabinet is not None
        now = self.now()
        try:
            for _ in range(RETRIES):
                code = rules.draw_code(secrets.randbelow)
                item = await asyncio.to_thread(
                    rules.drop, item_id, cabinet, placed[0], code, now=now, dropped_by=by,
                    dropped_by_role=role, description=description,
                    recipient_citizen=recipient_citizen,
                    recipient_department=recipient_department, phone=phone)
                try:
                    await self.store.put_record(self._item_record(item, now))
                except DuplicateKey:
                    continue  # a waiting item of this cabinet has that code: draw another
                await tell_all(self.notifier, rules.dropoff_tells(item, cabinet, code), now,
                               item=item.id, cabinet=cabinet.id)
                return item, code
            raise Refused("could not draw a free pickup code; try again")
        except Exception:
            await self._update_cabinet(cabinet_id, lambda c: rules.release(c, placed[0],
                                                                             item_id))
            if counted is not None:
                await self._uncount_drop(citizen, counted)
            raise

    async def _count_drop(self, citizen: str) -> float:
        """Counts one drop-off of the citizen's day (DailyLimit past it); returns its time."""
        def step(rec: Record | None) -> RecordDecision[float]:
            now = self.now()
            drops = Drops() if rec is None else msgspec.json.decode(rec.doc, type=Drops)
            counted = rules.count_drop(drops, now)
            return Record(kind=DROPS, id=citizen, doc=msgspec.json.encode(counted),
                          created=rec.created if rec else now, updated=now), now

        try:
            return await update_record(self.store, DROPS, citizen, step, tries=RETRIES)
        except UpdateGaveUp:
            raise Refused("drop-offs of this citizen kept changing; try again") from None

    async def _uncount_drop(self, citizen: str, at: float) -> None:
        def step(rec: Record | None) -> RecordDecision[None]:
            if rec is None:
                return None, None
            drops = rules.uncount_drop(msgspec.json.decode(rec.doc, type=Drops), at)
            return msgspec.structs.replace(
                rec, doc=msgspec.json.encode(drops), updated=self.now()), None

        with contextlib.suppress(UpdateGaveUp):  # the count stays one high: the safe side
            await update_record(self.store, DROPS, citizen, step, tries=RETRIES)

    async def _guard(self, guard_id: str) -> tuple[Guard, Record | None]:
        rec = await self.store.get_record(GUARD, guard_id)
        return (Guard() if rec is None else msgspec.json.decode(rec.doc, type=Guard)), rec

    async def _fail(self, guard_id: str, max_wrong: int, now: float) -> Guard:
        def step(rec: Record | None) -> RecordDecision[Guard]:
            guard = Guard() if rec is None else msgspec.json.decode(rec.doc, type=Guard)
            changed = rules.after_failure(guard, now, max_wrong)
            return Record(kind=GUARD, id=guard_id, doc=msgspec.json.encode(changed),
                          status="locked" if changed.locked_until > now else "open",
                          created=rec.created if rec else now, updated=now), changed

        try:
            return await update_record(self.store, GUARD, guard_id, step, tries=RETRIES)
        except UpdateGaveUp:
            return Guard(locked_until=now + rules.LOCK_S)  # under a storm: treat as locked

    async def _clear(self, guard_id: str, now: float) -> None:
        guard, rec = await self._guard(guard_id)
        if rec is None or not guard.failures:
            return
        cleared = Guard([], guard.locked_until, guard.lockouts)
        try:
            await self.store.put_record(
                msgspec.structs.replace(rec, doc=msgspec.json.encode(cleared), updated=now),
                expect_version=rec.version)
        except StaleVersion:
            pass  # a failure came in meanwhile; it stands

    async def pick_up(self, cabinet_id: str, code: str, *, caller: str) -> Picked:
        """Open the compartment holding the item with this code, once."""
        now = self.now()
        cabinet, _ = await self.get(cabinet_id)
        mine, every = f"{cabinet_id}|{caller}", f"{cabinet_id}|*"
        for guard_id, who in ((mine, "from this key"), (every, "at this cabinet")):
            wait = rules.retry_after((await self._guard(guard_id))[0], now)
            if wait > 0:
                raise Locked(wait, who)
        code = code.strip()
        if len(code) != rules.CODE_DIGITS or not code.isdigit():
            raise Invalid(f"a pickup code is {rules.CODE_DIGITS} digits")
        digest = await asyncio.to_thread(rules.code_hash, cabinet, code)
        found = await self.store.find_records(ITEM, unique=f"{cabinet_id}:{digest}", limit=1)
        collected: Item | None = None
        if found:
            item_id = found[0].id

            def take(rec: Record | None) -> RecordDecision[Item | None]:
                if rec is None:
                    raise NotFound(f"no cabinet item {item_id!r}")
                item = msgspec.json.decode(rec.doc, type=Item)
                if item.status in (ItemStatus.COLLECTED, ItemStatus.RETURNED):
                    # Taken a moment ago: the code is used, and counts as a wrong one.
                    return None, None
                taken = rules.collect(item, now, caller)  # Expired when kept for return
                return self._item_record(taken, now), taken

            with contextlib.suppress(UpdateGaveUp):  # counted as a wrong code, as a miss
                collected = await update_record(self.store, ITEM, item_id, take,
                                                tries=RETRIES)
        if collected is not None:
            done = collected
            await self._update_cabinet(cabinet_id, lambda c: rules.release(
                c, done.compartment, done.id))
            await self._clear(mine, now)
            return Picked(collected, collected.compartment)
        mine_guard = await self._fail(mine, rules.CALLER_MAX_WRONG, now)
        every_guard = await self._fail(every, rules.CABINET_MAX_WRONG, now)
        for guard, who in ((mine_guard, "from this key"), (every_guard, "at this cabinet")):
            wait = rules.retry_after(guard, now)
            if wait > 0:
                raise Locked(wait, who)
        raise WrongCode(rules.CALLER_MAX_WRONG - len(mine_guard.failures))

    async def return_item(self, item_id: str, *, by: str, note: str = "") -> Item:
        def step(rec: Record | None) -> RecordDecision[tuple[Item, Item]]:
            if rec is None:
                raise NotFound(f"no cabinet item {item_id!r}")
            item = msgspec.json.decode(rec.doc, type=Item)
            now = self.now()
            returned = rules.return_item(item, now, by, note)
            return self._item_record(returned, now), (item, returned)

        try:
            item, returned = await update_record(self.store, ITEM, item_id, step,
                                                 tries=RETRIES)
        except UpdateGaveUp:
            raise Refused(f"item {item_id} kept changing; try again") from None
        await self._update_cabinet(item.cabinet_id, lambda c: rules.release(
            c, item.compartment, item.id))
        return returned

    async def list_items(self, *, owner: str | None = None, status: str | None = None,
                         cabinet: str | None = None, limit: int = 100,
                         before: tuple[float, str] | None = None
                         ) -> tuple[list[Item], tuple[float, str] | None]:
        found: list[Item] = []
        cursor = before
        while True:
            page = await self.store.find_records(ITEM, owner=owner, status=status, limit=200,
                                                 before=cursor)
            for rec in page:
                cursor = (rec.created, rec.id)
                item = msgspec.json.decode(rec.doc, type=Item)
                if cabinet is None or item.cabinet_id == cabinet:
                    found.append(item)
                    if len(found) == limit:
                        return found, cursor
            if len(page) < 200:
                return found, None

    async def scan_uncollected(self, now: float | None = None, limit: int = 500) -> int:
        """Items still waiting 7 days after drop-off: flagged for return, staff and the
        recipient told."""
        now = self.now() if now is None else now
        flagged = 0
        for rec in await self.store.find_records(ITEM, due_before=now, limit=limit):
            item = msgspec.json.decode(rec.doc, type=Item)
            out = rules.flag_uncollected(item, now)
            if out is None:
                continue
            changed, tells = out
            try:
                await self.store.put_record(self._item_record(changed, now),
                                            expect_version=rec.version)
            except StaleVersion:
                continue  # collected just now, or flagged by another node
            flagged += 1
            await tell_all(self.notifier, tells, now, item=item.id, cabinet=item.cabinet_id)
        return flagged
