"""Read, decide, write if nothing changed meanwhile, else read again: the one place that does
optimistic updates of records and incidents, for every backend.

Every save of a record or an incident is version-checked (`StaleVersion` when someone saved
it since it was read). A caller's decision is only valid for the copy it was made on, so on a
clash the decision is made again on a fresh read, never re-applied blindly; after `tries`
clashes in a row the helper gives up with `UpdateGaveUp` rather than spin under contention.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from cityops.domain.incidents.model import Incident
from cityops.domain.incidents.workflow import Outcome
from cityops.store.incident_rows import StaleVersion
from cityops.store.protocols import IncidentStore, RecordStore
from cityops.store.record_rows import Record
from cityops.store.values import DuplicateKey

T = TypeVar("T")

TRIES = 8


class UpdateGaveUp(StaleVersion):
    """Every try at an update was overtaken by another writer's save of the same thing."""

    def __init__(self, what: str, tries: int) -> None:
        super().__init__(f"{what} kept changing: {tries} tries in a row were each overtaken by "
                         "another save; try again")
        self.what = what
        self.tries = tries


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


# Returned by a record decision in place of a new copy: remove the record as read.
DELETE: Final = _Delete()

# What a record decision gives: the copy to save (None: save nothing; DELETE: remove it), and
# what `update_record` hands back once that is done.
RecordDecision = tuple[Record | _Delete | None, T]


async def update_record(
    records: RecordStore,
    kind: str,
    record_id: str,
    decide: Callable[[Record | None], RecordDecision[T] | Awaitable[RecordDecision[T]]],
    *,
    tries: int = TRIES,
    on_retry: Callable[[], object] | None = None,
) -> T:
    """Apply `decide` to the record as stored (None when there is none) and save what it
    returns against the version it read; on a clash, read and decide again.

    `decide` may be a coroutine function, and may raise to stop (nothing is saved then). A
    copy it returns for a record that did not exist is created; if another writer created the
    record first, that counts as a clash. A `DuplicateKey` on the record's unique key is the
    caller's to handle: deciding again would not change whose key it is.
    """
    for _ in range(tries):
        rec = await records.get_record(kind, record_id)
        decided = decide(rec)
        write, result = await decided if inspect.isawaitable(decided) else decided
        if write is None:
            return result
        if isinstance(write, _Delete):
            if rec is None or await records.delete_record(kind, record_id,
                                                          expect_version=rec.version):
                return result
        else:
            if (write.kind, write.id) != (kind, record_id):
                raise ValueError(f"an update of {kind} {record_id} may not save "
                                 f"{write.kind} {write.id}")
            try:
                await records.put_record(write, expect_version=None if rec is None
                                         else rec.version)
                return result
            except StaleVersion:
                pass
            except DuplicateKey:
                if rec is not None or await records.get_record(kind, record_id) is None:
                    raise
        if on_retry is not None:
            on_retry()
    raise UpdateGaveUp(f"{kind} {record_id}", tries)


async def update_incident(
    incidents: IncidentStore,
    incident_id: str,
    decide: Callable[[Incident | None], Outcome | None],
    *,
    save: Callable[[Outcome, int], Awaitable[Incident]] | None = None,
    tries: int = TRIES,
    on_retry: Callable[[], object] | None = None,
) -> tuple[Incident, Outcome] | None:
    """Apply `decide` to the incident as stored and save its outcome (the changed case and the
    timeline events of the move) against the version it read; on a clash, read and decide
    again. None when `decide` chose to change nothing; else the saved case and the outcome.

    `save` replaces the plain save for a caller that tells others of each saved move: it is
    called with the outcome and the version read, and must raise `StaleVersion` before telling
    anyone when the case changed meanwhile.
    """
    for _ in range(tries):
        inc = await incidents.get_incident(incident_id)
        out = decide(inc)
        if out is None or inc is None:
            return None
        try:
            if save is not None:
                saved = await save(out, inc.version)
            else:
                saved = await incidents.save_incident(out.incident, out.events,
                                                      expect_version=inc.version)
            return saved, out
        except StaleVersion:
            if on_retry is not None:
                on_retry()
    raise UpdateGaveUp(f"incident {incident_id}", tries)
