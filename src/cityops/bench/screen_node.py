"""`python -m cityops.bench.screen_node SERVE-ARGS...`: `cityops serve` whose node moves its
GPS trackers itself, for `cityops bench screen` past what the HTTP intake can carry here.

A million positions a second through JSON over HTTP would take the two cores of the benchmark
machine for the intake alone (the feeder encoding them, the node decoding and storing them),
leaving nothing for what the benchmark is about: the live hub and the browser. This node is
`cityops serve` in every respect but one: a thread moves every tracker a few metres each second
by writing the new positions where the intake leaves them (the history's latest values, with
the time of the move), so the live hub finds them as it would find readings taken in.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from cityops.domain.kinds import MAX_CHANNELS

PERIOD_S = 1.0
STEP_DEG = 2e-5  # about 2 m a second: a truck crawling through traffic


class Mover:
    def __init__(self, node) -> None:
        self.node = node
        gps = [d for d in node.pack.devices if d.kind == "gps"]
        self.ids = [d.id for d in gps]
        self.lat = np.array([d.lat for d in gps])
        self.lon = np.array([d.lon for d in gps])
        self.heading = np.random.default_rng(3).uniform(0, 2 * np.pi, len(gps))
        self.rounds = 0
        self.late = 0

    def _series(self) -> np.ndarray | None:
        """The trackers' lat and lon series, once the node has registered them all (it does
        so as it starts, after it is built)."""
        index = self.node.registry.index
        if any(i not in index for i in (self.ids[0], self.ids[-1])):
            return None
        rows = np.array([index.get(i, -1) for i in self.ids], np.int64)
        if (rows < 0).any():
            return None
        self.state = self.node.history.state
        self.state.reserve(int(rows.max()) + 1)
        return (rows[:, None] * MAX_CHANNELS + np.array([0, 1])).reshape(-1)

    def round(self, series: np.ndarray) -> None:
        self.heading += np.random.default_rng(self.rounds).normal(0, 0.3, len(self.heading))
        self.lat += STEP_DEG * np.cos(self.heading)
        self.lon += STEP_DEG * np.sin(self.heading)
        values = np.column_stack([self.lat, self.lon]).reshape(-1)
        ts = np.full(len(values), int(time.time() * 1e6), np.int64)
        self.state.restore_latest(series, ts, values)
        self.rounds += 1

    def run(self) -> None:
        if not self.ids:
            return
        series = None
        while series is None:
            time.sleep(PERIOD_S)
            series = self._series()
        while True:
            started = time.monotonic()
            self.round(series)
            spent = time.monotonic() - started
            self.late += spent > PERIOD_S
            time.sleep(max(0.0, PERIOD_S - spent))


def main() -> None:
    import cityops.node as node_module

    class MovingNode(node_module.Node):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            mover = Mover(self)
            threading.Thread(target=mover.run, name="bench-mover", daemon=True).start()

    node_module.Node = MovingNode  # `cityops serve` imports Node when it runs
    from cityops.cli.main import run

    sys.argv = ["cityops", "serve", *sys.argv[1:]]
    run()


if __name__ == "__main__":
    main()
