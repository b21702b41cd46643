"""Enjoy without applying: a policy run over every citizen in the registry.

The registry and the licences the condition reads are paged out of the store, the condition is
evaluated column-wise in a worker thread (the event loop keeps serving), and each citizen who
qualifies is granted a benefit record (kind "benefit", unique `citizen:policy`): the store
refuses a second grant, so a re-run, or two runs at once, grant nothing twice and send no
second notice. Each grant keeps the audit of why; each run is recorded (kind "policy_run").
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from cityops.domain.citizens import Citizen
from cityops.domain.onestop.applications import Refused
from cityops.domain.onestop.policies import Policy, Population, qualify
from cityops.domain.tell import Tell
from cityops.domain.workclock import WorkClock
from cityops.serve.notices import tell_all
from cityops.serve.onestop.licences import LicenceBook
from cityops.store.base import DuplicateKey, Record, Store

BENEFIT = "benefit"
RUN = "policy_run"
CITIZEN = "citizen"
PAGE = 2000
CHUNK = 128
_citizen = msgspec.json.Decoder(Citizen).decode


class Grant(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    policy: str
    policy_name: str
    department: str
    citizen: str
    benefit: dict[str, Any]
    granted_at: float
    day: str
    run: str
    audit: list[dict[str, Any]]  # each condition, whether it held, the values it read


class Run(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    policy: str
    by: str
    started: float
    finished: float
    day: str
    citizens: int
    qualified: int
    granted: int
    already: int  # qualified, granted by an earlier run
    notices: int
    granted_to: list[str] = []


class BenefitRunner:
    def __init__(self, store: Store, policies: list[Policy], clock: WorkClock,
                 now: Callable[[], float], book: LicenceBook, notifier=None) -> None:
        self.store = store
        self.policies = {p.id: p for p in policies}
        self.clock = clock
        self.now = now
        self.book = book
        self.notifier = notifier

    def policy(self, policy_id: str) -> Policy | None:
        return self.policies.get(policy_id)

    async def run(self, policy_id: str, by: str) -> Run:
        policy = self.policies.get(policy_id)
        if policy is None:
            raise LookupError(f"no policy {policy_id!r}")
        if not policy.active:
            raise Refused(f"policy {policy_id} is not active")
        started = self.now()
        day = self.clock.local_date(started)
        citizens = await self._citizens()
        types = policy.condition.licence_types()
        licences = [lic async for lic in self.book.every(types)] if types else []
        population = Population(citizens, licences, day)
        qualified = await asyncio.to_thread(qualify, policy, population)
        run_id = f"run-{uuid.uuid4().hex[:16]}"
        by_id = {c.id: c for c in citizens}
        granted: list[str] = []
        already = 0
        tells: list[Tell] = []
        benefit = msgspec.to_builtins(policy.benefit)
        grants = [Grant(id=f"ben-{policy.id}-{q.citizen}", policy=policy.id,
                        policy_name=policy.name, department=policy.department,
                        citizen=q.citizen, benefit=benefit, granted_at=self.now(),
                        day=day.isoformat(), run=run_id, audit=q.audit) for q in qualified]
        # In chunks at once: the store's writer commits what is waiting together.
        for i in range(0, len(grants), CHUNK):
            chunk = grants[i:i + CHUNK]
            saved = await asyncio.gather(*(self._grant(g) for g in chunk))
            for grant, new in zip(chunk, saved, strict=True):
                if not new:
                    already += 1
                    continue
                granted.append(grant.citizen)
                tells.append(_notice(policy, by_id[grant.citizen], grant))
        sent = await tell_all(self.notifier, tells, self.now(), policy=policy.id)
        run = Run(id=run_id, policy=policy.id, by=by, started=started, finished=self.now(),
                  day=day.isoformat(), citizens=len(citizens), qualified=len(qualified),
                  granted=len(granted), already=already, notices=sent, granted_to=granted)
        await self.store.put_record(Record(kind=RUN, id=run.id, doc=msgspec.json.encode(run),
                                           owner=policy.id, status="done", created=started,
                                           updated=run.finished))
        return run

    async def _grant(self, grant: Grant) -> bool:
        """False when the citizen was granted this policy before (the unique key holds)."""
        try:
            await self.store.put_record(Record(
                kind=BENEFIT, id=grant.id, doc=msgspec.json.encode(grant),
                owner=grant.citizen, status="granted", unique=f"{grant.citizen}:{grant.policy}",
                created=grant.granted_at, updated=grant.granted_at))
        except DuplicateKey:
            return False
        return True

    async def _citizens(self) -> list[Citizen]:
        out: list[Citizen] = []
        before: tuple[float, str] | None = None
        while True:
            recs = await self.store.find_records(CITIZEN, limit=PAGE, before=before)
            out.extend(_citizen(r.doc) for r in recs)
            if len(recs) < PAGE:
                return out
            before = (recs[-1].created, recs[-1].id)

    async def runs(self, policy_id: str, limit: int = 20) -> list[Run]:
        recs = await self.store.find_records(RUN, owner=policy_id, limit=limit)
        return [msgspec.json.decode(r.doc, type=Run) for r in recs]

    async def benefits_of(self, citizen_id: str, limit: int = 100) -> list[Grant]:
        recs = await self.store.find_records(BENEFIT, owner=citizen_id, limit=limit)
        return [msgspec.json.decode(r.doc, type=Grant) for r in recs]


def _notice(policy: Policy, citizen: Citizen, grant: Grant) -> Tell:
    subject = f"{policy.name}: granted"
    body = policy.notice_text()
    args: dict[str, str | int | float] = {"policy_name": policy.name}
    if citizen.phone:
        return Tell("benefit.granted", citizen.phone, subject, body, sms=True, ref=grant.id,
                    args=args)
    return Tell("benefit.granted", f"citizen:{citizen.id}", subject, body, ref=grant.id,
                args=args)
