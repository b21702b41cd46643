"""A replayed pipeline for detection tests: the anomalous simulator posts its readings to a live
node's HTTP intake on a clock the test moves, and the node's alerts are scored as the pipeline
benchmark scores them."""

from __future__ import annotations

import msgspec
import pytest

from cityops.bench.pipeline import score
from cityops.scenarios.loader import load_scenarios
from cityops.sim.anomalies import AnomalousSimulator, AnomalyPlan, Label
from tests.clock_kit import Clock as ReplayClock


class Replay:
    """`await replay.run(minutes)` feeds the node; `replay.score()` is the benchmark's verdict."""

    def __init__(self, live, clock: ReplayClock, city, plan: AnomalyPlan, *, seed: int,
                 rate_factor: float) -> None:
        self.live, self.clock, self.city, self.plan = live, clock, city, plan
        self.labels: list[Label] = []
        self.sim = AnomalousSimulator(city, seed, clock.now, plan=plan,
                                      on_labels=self.labels.extend)
        nominal = sum(1.0 / city.kinds[d.kind].period_s for d in city.devices)
        self.rate = rate_factor * nominal
        self.alerts: list[dict] = []
        self.accepted = self.rejected = self.posted = 0

    async def run(self, minutes: float, step_s: float = 2.0) -> Replay:
        live = self.live
        key = await live.key("device")
        end = self.clock.now + minutes * 60
        owed = 0.0
        async with live.client(key) as client:
            while self.clock.now < end:
                self.clock.now += step_s
                owed += self.rate * step_s
                n, owed = int(owed), owed - int(owed)
                body = self.sim.next_batch(n, self.clock.now)
                answer = await client.post("/api/v1/readings", content=body)
                assert answer.status_code == 202, answer.text
                self.posted += len(msgspec.json.decode(body))
                self.accepted += answer.json()["accepted"]
                self.rejected += len(answer.json()["rejected"])
                assert await live.node.detect.caught_up()
                await live.node.detect.tick()
        self.sim.finish(self.clock.now)
        admin = await live.key("admin")
        async with live.client(admin) as client:
            cursor = None
            while True:
                params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
                page = (await client.get("/api/v1/alerts", params=params)).json()
                self.alerts += page["items"]
                cursor = page["next"]
                if not cursor:
                    break
        return self

    def score(self) -> dict:
        return score(self.labels, self.alerts)


@pytest.fixture
def replay(tmp_path, live_node):
    """`async with replay(city, start_ts, rules=..., per_min=...) as r: await r.run(minutes)`:
    a node on `city` fed by a simulator with an anomaly plan of `rules`."""
    import contextlib

    @contextlib.asynccontextmanager
    async def start(city, start_ts: float, *, rules: set[str] | None, per_min: float = 1.0,
                    minutes: float = 20.0, seed: int = 1, rate_factor: float = 4.0,
                    state: str = "daily"):
        clock = ReplayClock(start_ts)
        scenarios = load_scenarios(kinds=city.kinds)
        plan = AnomalyPlan(city, scenarios, seed, start_ts, per_min, state=state,
                           end_ts=start_ts + minutes * 60 - 5, rules=rules)
        # Time-driven rules are ticked by the replay, on its clock, after every batch.
        async with live_node(city, tmp_path / "data", clock=clock, detect_tick_s=3600.0) as live:
            yield Replay(live, clock, city, plan, seed=seed, rate_factor=rate_factor)

    return start
