"""Outage: many devices behind one gateway, in one village or one town falling silent together.

A gateway that loses power or backhaul silences every device behind it at once; counted one
by one, each is "offline" and a crew is sent to each. This rule sees the pattern instead and
raises one alert for the network, for the largest area the silence explains (a town, else a
village, else a gateway), and tells the engine which devices it explains, so that their own
offline alerts are recorded as inhibited by it rather than opening cases.

Judged on ticks from each device's newest reading time (`ctx.last_seen_us`), or the time a
reading of it arrived here if later (a backlog of old readings is a device alive now):

- a device is *silent* when it has not reported for `late` of its kind's reporting periods
  (1.5 by default: well before the absence rule's 3, so the outage is known before the
  devices' own offline alerts are due);
- for each group, the silence began at T, the median last reading of its silent devices;
  the devices *heard* since T are alive, the silent ones whose last reading lies within
  `within` of T fell silent together, and devices neither silent nor heard since T (slow
  kinds not due yet) tell nothing and are left out;
- the group is out when at least `min_devices` fell silent together and they are at least
  `share` of those that tell (fell silent together + alive). One flaky device among thirty
  live ones is 1/31; a gateway down is 1/1.

Only devices that have reported at least once count (a device never heard of is being
installed, not out), and only kinds reporting at least every `max_period` (an hourly KPI
cannot tell a ten-minute outage); movers (GPS) cross areas and are left out.

An outage clears once `clear_share` of the devices that fell silent are heard again. While it
lasts, every device of its group counts as explained, including those that fall silent later.
After it, a device of the group tells nothing until it is heard again or has had the time to
report (`late` periods): slow kinds take their turn after the fast ones, and a gateway still
dark when its village came back is raised on its own once its devices had that time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cityops.domain.readings import ReadingBatch
from cityops.domain.scenarios import spec
from cityops.domain.scenarios.context import Context
from cityops.domain.scenarios.primitives.common import (
    NEVER,
    US,
    Selection,
    duration_us,
    fmt_duration,
    grown,
    runs,
)
from cityops.domain.scenarios.signals import Signal

# Largest first: a town out explains its villages and gateways, a village its gateways.
SIZE_ORDER = ("town", "village", "gateway")
LEVEL_NAMES = {"town": "town", "village": "village", "gateway": "gateway"}


@dataclass(slots=True)
class _Out:
    level: str
    group: int  # id in the places table of the level
    name: str  # area code or gateway id
    since_us: int  # when the silence began (median last reading of the silent devices)
    devices: np.ndarray  # the devices that fell silent together
    newest_us: int  # the newest of their last readings: heard after it is back


class OutageEvaluator:
    source = "readings"

    def __init__(self, pack: spec.ScenarioPack, rule: spec.Outage, ctx: Context) -> None:
        self.rule = f"{pack.name}.{rule.id}"
        self.spec = rule
        self.sel = Selection(rule, ctx, any_channel=True)
        self.levels = [level for level in SIZE_ORDER if level in rule.per]
        for level in self.levels:
            ctx.places.group(level)  # refuses an unknown grouping
        self.within_us = duration_us(rule.within)
        self.max_period_s = spec.seconds(rule.max_period)
        self.outages: dict[str, _Out] = {}  # by subject
        self._explains = np.full(0, -1, np.int64)  # per device: index into _subjects
        self._subjects: list[str] = []
        self.heard = np.zeros(0, np.int64)  # per device: newest reading or its arrival here
        # Per device: when an outage explaining it last cleared. Until the device is heard
        # after that, its silence tells nothing new: a bin sensor reporting every ten minutes
        # has not had its turn yet when the noise meters of its gateway are back.
        self.recovered = np.zeros(0, np.int64)

    # -- what the engine asks -----------------------------------------------------------------

    def explains(self, device: int) -> str | None:
        """The subject of the outage that explains a device's silence, if any."""
        if 0 <= device < self._explains.shape[0]:
            i = int(self._explains[device])
            if i >= 0:
                return self._subjects[i]
        return None

    # -- evaluation -----------------------------------------------------------------------------

    def on_batch(self, batch: ReadingBatch, ctx: Context) -> list[Signal]:
        """Judged on ticks; here only the arrival is noted: a device sending a backlog of old
        readings (a gateway catching up, a replay) is heard now, not silent since then."""
        rows = self.sel.rows(batch, ctx)
        if rows.size:
            n = len(ctx.registry)
            self.heard = grown(self.heard, n, NEVER)
            dev = batch.device[rows]
            np.maximum.at(self.heard, dev, np.maximum(batch.ts[rows], ctx.now_us))
        return []

    def on_tick(self, ctx: Context) -> list[Signal]:
        now = ctx.now_us
        seen = ctx.last_seen_us
        if not now or seen is None:
            return []
        self.sel.refresh(ctx)
        registry = ctx.registry
        n = len(registry)
        last = np.full(n, NEVER, np.int64)
        k = min(n, seen.shape[0])
        last[:k] = seen[:k]
        self.heard = grown(self.heard, n, NEVER)
        self.recovered = grown(self.recovered, n, NEVER)
        last = np.maximum(last, self.heard[:n])
        out = self._cleared(ctx, last, now)  # first: a recovery changes who can tell
        kinds = registry.kinds
        period_s = np.array([kind.period_s for kind in kinds], np.float64)[registry.kind_of]
        mobile = np.array([kind.mobile for kind in kinds], bool)[registry.kind_of]
        allowance = (self.spec.late * period_s * US).astype(np.int64)
        # Since a recovery: told again once heard, or once it had its time to report.
        recovered = self.recovered[:n]
        told = (last > recovered) | (now - recovered > allowance)
        eligible = (self.sel.mask[:n] & (last > NEVER) & ~mobile
                    & (period_s <= self.max_period_s) & told)
        late = eligible & (now - last > allowance)
        taken = self._explained_mask(ctx, n)
        for level in self.levels:
            ids, names = ctx.places.group(level)
            gid = np.full(n, -1, np.int64)
            gid[: min(n, ids.shape[0])] = ids[:n]
            out += self._raised(ctx, level, gid, names, last, late, eligible, taken, now)
        if out:
            self._rebuild(ctx, n)
        return out

    def _cleared(self, ctx: Context, last: np.ndarray, now: int) -> list[Signal]:
        out = []
        for subject, o in list(self.outages.items()):
            devices = o.devices[o.devices < last.shape[0]]
            # Back: heard after the newest reading any of them sent before falling silent
            # (not after the median the silence is dated by: half of them sent later than
            # that, and would have counted as back from the start).
            back = float(np.mean(last[devices] > o.newest_us)) if devices.size else 1.0
            if back >= self.spec.clear_share:
                del self.outages[subject]
                ids, _ = ctx.places.group(o.level)
                k = min(self.recovered.shape[0], ids.shape[0])
                self.recovered[:k][ids[:k] == o.group] = now
                out.append(Signal(self.rule, subject, False, now, int(o.devices[0]),
                                  back, detail=f"{round(back * 100)} % of the "
                                  f"{o.devices.size} silent devices are reporting again"))
        return out

    def _raised(self, ctx: Context, level: str, gid: np.ndarray, names: list[str],
                last: np.ndarray, late: np.ndarray, eligible: np.ndarray, taken: np.ndarray,
                now: int) -> list[Signal]:
        cand = np.flatnonzero(late & (gid >= 0) & ~taken)
        if cand.size < self.spec.min_devices:
            return []
        g, t = gid[cand], last[cand]
        order = np.lexsort((t, g))
        g, t = g[order], t[order]
        starts, stops = runs(g)
        since = np.full(len(names), NEVER, np.int64)
        since[g[starts]] = t[starts + (stops - starts - 1) // 2]  # the median's lower half
        began = np.full(gid.shape[0], NEVER, np.int64)
        inside = gid >= 0
        began[inside] = since[gid[inside]]
        told = inside & (began > NEVER) & ~taken
        together = told & late & (np.abs(last - began) <= self.within_us)
        alive = told & eligible & ~late & (last > began)
        silent_n = np.bincount(gid[together], minlength=len(names))
        alive_n = np.bincount(gid[alive], minlength=len(names))
        holds = (silent_n >= self.spec.min_devices) \
            & (silent_n >= self.spec.share * (silent_n + alive_n))
        out = []
        for group in np.flatnonzero(holds).tolist():
            name = names[group]
            subject = f"outage:{level}:{name}"
            if subject in self.outages:
                continue
            members = np.flatnonzero(together & (gid == group))
            o = _Out(level, group, name, int(since[group]), members, int(last[members].max()))
            self.outages[subject] = o
            taken |= gid == group
            share = silent_n[group] / (silent_n[group] + alive_n[group])
            quiet = (now - o.since_us) / US
            detail = (f"{silent_n[group]} of {silent_n[group] + alive_n[group]} devices of "
                      f"{LEVEL_NAMES[level]} {name} fell silent together "
                      f"{fmt_duration(quiet)} ago: the network they share, not each device")
            out.append(Signal(self.rule, subject, True, now, int(members[0]), float(share),
                              detail=detail))
        return out

    def _explained_mask(self, ctx: Context, n: int) -> np.ndarray:
        mask = np.zeros(n, bool)
        for o in self.outages.values():
            ids, _ = ctx.places.group(o.level)
            k = min(n, ids.shape[0])
            mask[:k] |= ids[:k] == o.group
        return mask

    def _rebuild(self, ctx: Context, n: int) -> None:
        self._subjects = list(self.outages)
        explains = np.full(n, -1, np.int64)
        for i, o in enumerate(self.outages.values()):
            ids, _ = ctx.places.group(o.level)
            k = min(n, ids.shape[0])
            explains[:k][ids[:k] == o.group] = i
        self._explains = explains
