"""Helpers the simulator tests share."""

from __future__ import annotations


class CountingSender:
    """A sender that sends nowhere: it makes each payload as a real one would and counts the
    readings, every one of them accepted."""

    url = "test://"
    concurrency = 1

    def __init__(self) -> None:
        self.readings = 0

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def payload(self, sim, n, now_ts):
        return sim.next_readings(n, now_ts)

    async def send(self, payload, n):
        from cityops.sim.senders import Outcome

        self.readings += len(payload)
        return Outcome(sent=n, accepted=n)
