"""Silences: each matcher, matchers together, areas by any level, time bounds, and the
checks that refuse a silence naming the field at fault."""

from __future__ import annotations

import msgspec
import pytest

from cityops.domain.alerts import Alert
from cityops.domain.city import AreaCodes
from cityops.domain.silences import (
    Known,
    Matchers,
    Silence,
    SilenceEnded,
    SilenceError,
    SilenceSet,
    expired,
    matches,
    new_silence,
    packs_reached,
)

NOW = 1_800_000_000.0
DISTRICT, TOWN, VILLAGE = "310115", "310115001", "310115001002"
OTHER_VILLAGE = "310115002001"

KNOWN = Known(
    rules_of={"noise": ["noise.night", "noise.day"], "smoke": ["smoke.cluster"],
              "device_health": ["device_health.offline"]},
    category_of={"noise": "event.environment.noise", "smoke": "event.fire.smoke",
                 "device_health": "component.device.offline"},
    categories={"event.environment.noise", "event.fire.smoke", "component.device.offline",
                "component.manhole.missing"},
    kinds={"noise", "smoke"},
    areas={DISTRICT, TOWN, VILLAGE, OTHER_VILLAGE, "310115002"},
    devices={"noise-1", "noise-2", "smoke-1"},
)
KIND = {"noise-1": "noise", "noise-2": "noise", "smoke-1": "smoke"}


def kind_of(device_id: str) -> str | None:
    return KIND.get(device_id)


def alert(**kw) -> Alert:
    base = dict(id="a1", scenario="noise", rule="noise.night",
                category="event.environment.noise", severity="minor", urgency="normal",
                departments=["environment"], subject="noise-1", title="Loud",
                areas=AreaCodes(DISTRICT, TOWN, VILLAGE), first_seen=NOW, last_seen=NOW)
    base.update(kw)
    return Alert(**base)


def silence(sid: str = "s1", start: float = NOW - 60, end: float = NOW + 3600,
            **matchers) -> Silence:
    return Silence(id=sid, matchers=Matchers(**matchers), starts_at=start, ends_at=end,
                   comment="works", created_by="k_1", created_at=start)


@pytest.mark.parametrize(("field", "hit", "miss"), [
    ("pack", "noise", "smoke"),
    ("rule", "noise.night", "noise.day"),
    ("category", "event.environment.noise", "event.fire.smoke"),
    ("device", "noise-1", "noise-2"),
    ("kind", "noise", "smoke"),
    ("area", VILLAGE, OTHER_VILLAGE),
])
def test_each_matcher_holds_what_it_names_and_nothing_else(field, hit, miss) -> None:
    assert matches(silence(**{field: [hit]}), alert(), kind_of)
    assert not matches(silence(**{field: [miss]}), alert(), kind_of)
    assert matches(silence(**{field: [miss, hit]}), alert(), kind_of)  # any value of a list


def test_an_area_matches_at_every_level_and_a_sibling_does_not() -> None:
    for code in (DISTRICT, TOWN, VILLAGE):
        assert matches(silence(area=[code]), alert())
    assert not matches(silence(area=["310115002"]), alert())
    assert not matches(silence(area=[TOWN]), alert(areas=None))  # no place: no area match


def test_all_matchers_given_must_match() -> None:
    both = silence(pack=["noise"], area=[TOWN])
    assert matches(both, alert())
    assert not matches(both, alert(areas=AreaCodes(DISTRICT, "310115002", OTHER_VILLAGE)))
    assert not matches(both, alert(scenario="smoke"))


def test_device_and_kind_look_at_the_subject_only() -> None:
    # A cell alert that device noise-1's readings fed is not held by silencing noise-1:
    # the other devices of the cell may be right.
    cell = alert(subject="cell:8a309a", evidence=[])
    assert not matches(silence(device=["noise-1"]), cell, kind_of)
    assert not matches(silence(kind=["noise"]), cell, kind_of)


def test_the_set_holds_only_within_the_time_span_start_inclusive_end_exclusive() -> None:
    s = silence(start=NOW, end=NOW + 10, area=[TOWN])
    book = SilenceSet([s])
    assert book.match(alert(), NOW - 0.001) is None
    assert book.match(alert(), NOW) is s
    assert book.match(alert(), NOW + 9.999) is s
    assert book.match(alert(), NOW + 10) is None
    gone = expired(s, by="k_2", reason="fixed", now=NOW + 5)
    assert SilenceSet([gone]).match(alert(), NOW + 6) is None
    assert gone.state(NOW + 6) == "ended" and s.state(NOW + 6) == "active"
    assert s.state(NOW - 1) == "pending"


def test_the_set_finds_silences_filed_under_any_matcher_and_prefers_the_longest() -> None:
    short = silence("short", end=NOW + 600, rule=["noise.night"])
    long_ = silence("long", end=NOW + 7200, area=[DISTRICT])
    other = silence("other", end=NOW + 9999, kind=["smoke"])
    by_kind = silence("by-kind", end=NOW + 100, kind=["noise"])
    book = SilenceSet([short, long_, other, by_kind], kind_of)
    assert len(book) == 4
    assert book.match(alert(), NOW) is long_
    assert book.match(alert(areas=None), NOW) is short
    assert book.match(alert(rule="noise.day", areas=None), NOW) is by_kind
    assert book.match(alert(rule="noise.day", areas=None, subject="area:x"), NOW) is None


def test_a_set_of_many_checks_only_the_candidates() -> None:
    many = [silence(f"d{i}", device=[f"dev-{i}"]) for i in range(5000)]
    book = SilenceSet([*many, silence("mine", device=["noise-1"])])
    assert len(book.candidates(alert())) == 1
    assert book.match(alert(), NOW).id == "mine"


# -- making one: refused with the field named -------------------------------------------------


def make(**kw):
    args = dict(silence_id="s", matchers=Matchers(area=[TOWN]), comment="roadworks", now=NOW,
                known=KNOWN, created_by="k_1", duration="2h")
    args.update(kw)
    return new_silence(**args)


def test_a_good_silence_is_trimmed_and_timed() -> None:
    s = make(matchers=Matchers(area=[f" {TOWN}", TOWN], rule=["noise.night"]),
             comment="  works  ")
    assert s.matchers.area == [TOWN] and s.comment == "works"
    assert (s.starts_at, s.ends_at) == (NOW, NOW + 7200)
    later = make(starts_at=NOW + 600, ends_at=NOW + 1200, duration=None)
    assert (later.starts_at, later.ends_at) == (NOW + 600, NOW + 1200)
    past = make(starts_at=NOW - 600)
    assert past.starts_at == NOW  # nothing before now can be held


@pytest.mark.parametrize(("kw", "field"), [
    (dict(matchers=Matchers()), "matchers"),
    (dict(matchers=Matchers(pack=["nope"])), "matchers.pack"),
    (dict(matchers=Matchers(rule=["noise.nope"])), "matchers.rule"),
    (dict(matchers=Matchers(rule=["night"])), "matchers.rule"),
    (dict(matchers=Matchers(category=["event.nope"])), "matchers.category"),
    (dict(matchers=Matchers(device=["ghost-1"])), "matchers.device"),
    (dict(matchers=Matchers(kind=["lamp"])), "matchers.kind"),
    (dict(matchers=Matchers(area=["999999"])), "matchers.area"),
    (dict(matchers=Matchers(pack=["smoke"], rule=["noise.night"])), "matchers.rule"),
    (dict(matchers=Matchers(pack=["smoke"], category=["event.environment.noise"])),
     "matchers.category"),
    (dict(comment="   "), "comment"),
    (dict(comment="x" * 501), "comment"),
    (dict(duration=None), "ends_at"),
    (dict(ends_at=NOW + 60), "duration"),
    (dict(duration="soon"), "duration"),
    (dict(duration="0s"), "duration"),
    (dict(duration="31d"), "duration"),
    (dict(duration=None, ends_at=NOW - 1), "ends_at"),
    (dict(duration=None, starts_at=NOW + 600, ends_at=NOW + 300), "ends_at"),
    (dict(duration=None, ends_at=float("inf")), "ends_at"),
    (dict(duration=None, ends_at=NOW + 40 * 86400), "ends_at"),
    (dict(starts_at=float("nan")), "starts_at"),
    (dict(starts_at=NOW + 90 * 86400), "starts_at"),
])
def test_refused_naming_the_field(kw, field) -> None:
    with pytest.raises(SilenceError) as caught:
        make(**kw)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_the_longest_silence_is_a_setting() -> None:
    assert make(duration="40d", max_s=60 * 86400).ends_at == NOW + 40 * 86400
    with pytest.raises(SilenceError):
        make(duration="3h", max_s=7200)


def test_unknown_matcher_names_are_refused_by_the_format() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field `all`"):
        msgspec.json.decode(b'{"all": true}', type=Matchers)
    with pytest.raises(msgspec.ValidationError, match="unknown field `severity`"):
        msgspec.json.decode(b'{"severity": ["major"]}', type=Matchers)


def test_expiring_an_ended_silence_is_refused() -> None:
    s = make()
    gone = expired(s, by="k_2", reason="done early", now=NOW + 60)
    assert gone.end == NOW + 60 and gone.expired_by == "k_2"
    with pytest.raises(SilenceEnded):
        expired(gone, by="k_2", reason="", now=NOW + 61)
    with pytest.raises(SilenceEnded):
        expired(s, by="k_2", reason="", now=s.ends_at)


def test_packs_reached_narrow_by_pack_rule_and_category() -> None:
    assert packs_reached(Matchers(area=[TOWN]), KNOWN) == {"noise", "smoke", "device_health"}
    assert packs_reached(Matchers(rule=["smoke.cluster"]), KNOWN) == {"smoke"}
    assert packs_reached(Matchers(category=["event.environment.noise"]), KNOWN) == {"noise"}
    assert packs_reached(Matchers(pack=["noise", "smoke"], category=["event.fire.smoke"]),
                         KNOWN) == {"smoke"}
