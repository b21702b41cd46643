"""Senior care's notices to citizens: to the phone the citizen registry holds (an SMS
gateway routes it), else to the account, where the citizen portal shows it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from cityops.domain.citizens import Citizen
from cityops.domain.seniorcare.admission import Told
from cityops.domain.tell import Tell
from cityops.serve.notices import tell_all


class CitizenSource(Protocol):
    async def get(self, citizen_id: str) -> Citizen | None: ...


class CitizenTeller:
    def __init__(self, citizens: CitizenSource, notifier: Any) -> None:
        self.citizens = citizens
        self.notifier = notifier

    async def citizen(self, citizen_id: str) -> Citizen | None:
        return await self.citizens.get(citizen_id)

    async def tell(self, told: Iterable[Told], now: float, **data: object) -> int:
        tells = []
        for t in told:
            c = await self.citizens.get(t.citizen)
            if c is not None and c.phone:
                tells.append(Tell(t.kind, c.phone, t.text, sms=True, ref=t.ref, args=t.args))
            else:
                tells.append(Tell(t.kind, f"citizen:{t.citizen}", t.text, ref=t.ref, args=t.args))
        return await tell_all(self.notifier, tells, now, **data)
