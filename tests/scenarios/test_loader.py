"""Scenario packs: the shipped ones load, and every kind of mistake names its file and field."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.scenarios import spec
from cityops.scenarios import loader
from cityops.scenarios.checks import untranslated
from cityops.scenarios.loader import (
    BUILTIN_DIR,
    STANDARD_DEPARTMENTS,
    ScenarioError,
    load_scenarios,
    pack_summary,
)

SHIPPED = {"noise", "flood", "typhoon", "fire_lane", "muck", "garbage", "components", "smoke",
           "elderly", "device_health", "vital_signs"}

GOOD = {
    "name": "street_music",
    "version": 1,
    "title": "Street music",
    "category": {"code": "event.environment.street_music", "kind": "event",
                 "major": "environment", "minor": "street_music", "name": "Street music"},
    "departments": ["city_management"],
    "rules": [
        {"id": "loud", "type": "threshold", "kind": "noise", "above": 75, "for": "5m"},
        {"id": "rain", "type": "threshold", "kind": "rainfall", "above": 20},
        {"id": "both", "type": "composite", "all_of": ["loud", "rain"]},
    ],
}


def write_pack(root: Path, doc: dict | str, folder: str | None = None) -> Path:
    name = folder or (doc["name"] if isinstance(doc, dict) else "pack")
    path = root / name / "manifest.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def load_one(tmp_path: Path, doc: dict | str, **kwargs):
    write_pack(tmp_path, doc)
    kwargs.setdefault("departments", set(STANDARD_DEPARTMENTS))
    return load_scenarios([tmp_path], kinds=BUILTIN_KINDS, builtin=False, **kwargs)


def error_of(tmp_path: Path, doc: dict | str, **kwargs) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_one(tmp_path, doc, **kwargs)
    return str(caught.value)


def changed(**rule_changes) -> dict:
    """GOOD with its first rule updated (a value of None removes the field)."""
    doc = copy.deepcopy(GOOD)
    for key, value in rule_changes.items():
        if value is None:
            doc["rules"][0].pop(key, None)
        else:
            doc["rules"][0][key] = value
    return doc


# -- the shipped packs ----------------------------------------------------------------------


def test_every_shipped_pack_loads_against_builtin_kinds_and_the_16_departments():
    assert len(STANDARD_DEPARTMENTS) == 16
    packs = load_scenarios(kinds=BUILTIN_KINDS, departments=set(STANDARD_DEPARTMENTS))
    assert {p.name for p in packs} >= SHIPPED
    for pack in packs:
        assert pack.rules and pack.departments and pack.states
        assert set(pack.departments) <= STANDARD_DEPARTMENTS


def test_every_shipped_pack_names_its_category_and_titles_its_cases_in_chinese():
    # A case opened by a shipped rule reads in Chinese on a zh-CN page: its category, its
    # rule's title, or the pack's title for a rule that has none (device_health's offline_*).
    han = re.compile(r"[\u4e00-\u9fff]")
    for pack in load_scenarios(kinds=BUILTIN_KINDS):
        assert list(untranslated(pack, "zh-CN")) == [], pack.name
        assert han.search(pack.category.names["zh-CN"]), pack.name
        assert han.search(pack.titles["zh-CN"]), pack.name
        for rule in pack.rules:
            title = rule.titles.get("zh-CN") if rule.title else pack.titles["zh-CN"]
            assert title and han.search(title), f"{pack.name}.{rule.id}"


def test_a_shipped_pack_without_chinese_is_refused_and_a_citys_own_pack_loads(tmp_path,
                                                                             monkeypatch):
    write_pack(tmp_path, changed(title="Loud street music"))
    assert load_scenarios([tmp_path], kinds=BUILTIN_KINDS, builtin=False)  # a city's own
    monkeypatch.setattr(loader, "BUILTIN_DIR", tmp_path)
    with pytest.raises(ScenarioError) as caught:
        load_scenarios(kinds=BUILTIN_KINDS)
    message = str(caught.value)
    assert "category.names: the category's name in zh-CN is missing" in message
    assert "titles: the pack's title in zh-CN is missing" in message  # rules[1] has no title
    assert "rules[0].titles: the title in zh-CN is missing" in message


def test_every_shipped_pack_has_a_readme_that_names_each_rule():
    for pack in load_scenarios(kinds=BUILTIN_KINDS):
        readme = BUILTIN_DIR / pack.name / "README.md"
        assert readme.is_file(), f"{pack.name} has no README.md"
        text = readme.read_text()
        for rule in pack.rules:
            # device_health describes its per-kind offline rules as one row: offline_<kind>.
            name = "offline_<kind>" if rule.id.startswith("offline_") and \
                rule.id not in ("offline_gps", "offline_kpi") else rule.id
            assert f"`{name}`" in text, f"{pack.name}/README.md does not explain {rule.id}"


def test_typhoon_is_only_active_in_special_and_emergency_states():
    packs = {p.name: p for p in load_scenarios(kinds=BUILTIN_KINDS)}
    assert packs["typhoon"].states == ["special", "emergency"]


def test_shipped_overrides_are_typed_under_attribute_names():
    packs = {p.name: p for p in load_scenarios(kinds=BUILTIN_KINDS)}
    night = next(r for r in packs["noise"].rules if r.id == "night_residential")
    assert spec.param(night, "above", "daily") == 55
    assert spec.param(night, "above", "special") == 50
    assert isinstance(spec.param(night, "above", "special"), float)


def test_a_city_may_name_its_own_departments_and_the_standard_ones(tmp_path):
    doc = copy.deepcopy(GOOD)
    doc["departments"] = ["port_authority", "police"]
    (pack,) = load_one(tmp_path, doc, departments={"port_authority"})
    assert pack.departments == ["port_authority", "police"]


def test_without_departments_any_department_is_accepted(tmp_path):
    doc = copy.deepcopy(GOOD)
    doc["departments"] = ["anything_goes"]
    assert load_one(tmp_path, doc, departments=None)


def test_city_folders_come_after_the_builtin_packs(tmp_path):
    write_pack(tmp_path, GOOD)
    packs = load_scenarios([tmp_path], kinds=BUILTIN_KINDS)
    assert packs[-1].name == "street_music"
    assert {p.name for p in packs[:-1]} >= SHIPPED


def test_a_folder_may_itself_be_one_pack(tmp_path):
    write_pack(tmp_path, GOOD)
    packs = load_scenarios([tmp_path / "street_music"], kinds=BUILTIN_KINDS, builtin=False)
    assert [p.name for p in packs] == ["street_music"]


def test_yaml_keeps_on_and_times_as_text(tmp_path):
    text = """
name: trucks
version: 1
title: Trucks
category: {code: event.street_order.trucks, kind: event, major: street_order, minor: trucks,
           name: Trucks}
departments: [city_management]
rules:
  - id: in_zone
    type: geofence
    kind: gps
    zones: muck_forbidden
    on: enter
    when: {hours: 07:00-22:00}
"""
    (pack,) = load_one(tmp_path, text)
    rule = pack.rules[0]
    assert rule.on == "enter"
    assert rule.when.hours == "07:00-22:00"


def test_overrides_written_as_in_the_manifest_are_found_by_param(tmp_path):
    doc = changed(states={"emergency": {"for": "1m", "above": 70}})
    (pack,) = load_one(tmp_path, doc)
    rule = pack.rules[0]
    assert spec.param(rule, "for_", "emergency") == "1m"
    assert spec.param(rule, "for_", "daily") == "5m"
    assert spec.param(rule, "above", "emergency") == 70.0


def test_pack_summary_shows_every_parameter_in_force():
    packs = {p.name: p for p in load_scenarios(kinds=BUILTIN_KINDS)}
    summary = pack_summary(packs["noise"])
    assert summary["name"] == "noise" and summary["departments"]
    assert summary["category"]["code"] == "event.environment.noise_nuisance"
    night = summary["rules"][0]
    assert night["ref"] == "noise.night_residential"
    assert night["type"] == "threshold"
    assert night["params"]["above"] == 55 and night["params"]["for"] == "10m"
    assert night["when"] == {"hours": "22:00-06:00"}
    assert night["states"] == {"special": {"above": 50.0, "clear_below": 45.0}}
    flood = pack_summary(packs["flood"])
    rising = next(r for r in flood["rules"] if r["id"] == "rising")
    assert rising["params"]["clear_after"] == "30m"  # a default, shown all the same


# -- errors: decoding -----------------------------------------------------------------------

FILE = "street_music/manifest.yaml"


@pytest.mark.parametrize("doc, field, words", [
    (changed(above="loud"), "rules[0].above", "Expected `float | null`, got `str`"),
    (changed(loudness=3), "rules[0].loudness", "unknown field"),
    (changed(type="thresh"), "rules[0].type", "Invalid value 'thresh'"),
    (changed(type=None), "rules[0].type", "required field is missing"),
    (changed(severity="huge"), "rules[0].severity", "Invalid enum value 'huge'"),
    (changed(states={"dayly": {"above": 1}}), "rules[0].states", "Invalid enum value 'dayly'"),
    ({**GOOD, "version": "one"}, "version", "Expected `int`, got `str`"),
    ({k: v for k, v in GOOD.items() if k != "category"}, "category",
     "required field is missing"),
    ({**GOOD, "category": {**GOOD["category"], "kind": "incident"}}, "category.kind",
     "Invalid enum value 'incident'"),
])
def test_decoding_errors_name_file_and_field(tmp_path, doc, field, words):
    message = error_of(tmp_path, doc)
    assert f"{FILE}: {field}: " in message
    assert words in message


def test_builtin_pack_errors_are_named_relative_to_the_package():
    from cityops.scenarios.loader import _label

    assert _label(BUILTIN_DIR / "noise" / "manifest.yaml") == "scenarios/noise/manifest.yaml"


def test_invalid_yaml_names_the_file(tmp_path):
    message = error_of(tmp_path, "name: [unclosed\n")
    assert "pack/manifest.yaml: not valid YAML" in message


def test_duplicate_keys_are_refused(tmp_path):
    text = yaml.safe_dump(GOOD, sort_keys=False) + "version: 2\n"
    message = error_of(tmp_path, text)
    assert "pack/manifest.yaml: not valid YAML" in message and "'version' appears twice" in message


def test_a_manifest_that_is_not_a_mapping(tmp_path):
    assert "must be a mapping" in error_of(tmp_path, "- just\n- a list\n")


def test_a_misnamed_manifest_is_not_silently_skipped(tmp_path):
    (tmp_path / "street_music").mkdir()
    (tmp_path / "street_music" / "manifest.yml").write_text(yaml.safe_dump(GOOD))
    with pytest.raises(ScenarioError, match=r"street_music/manifest.yaml: missing \(found "
                                            r"manifest.yml"):
        load_scenarios([tmp_path], kinds=BUILTIN_KINDS, builtin=False)


def test_a_missing_folder(tmp_path):
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenarios([tmp_path / "nope"], kinds=BUILTIN_KINDS, builtin=False)


# -- errors: meaning ------------------------------------------------------------------------


@pytest.mark.parametrize("doc, field, words", [
    (changed(kind="noize"), "rules[0].kind", "unknown device kind 'noize'"),
    (changed(kind=None), "rules[0].kind", "must say which device kind"),
    (changed(channel="db"), "rules[0].channel", "has no channel 'db' (it has: laeq)"),
    (changed(**{"for": "ten minutes"}), "rules[0].for", "is not like 90s"),
    (changed(**{"for": "-5m"}), "rules[0].for", "is not like 90s"),
    (changed(when={"hours": "22:00-26:00"}), "rules[0].when.hours", "not a time of day"),
    (changed(when={"hours": "10pm-6am"}), "rules[0].when.hours", "not like 06:30"),
    (changed(when={"months": [13]}), "rules[0].when.months[0]", "not a month"),
    (changed(when={"weekdays": [0]}), "rules[0].when.weekdays[0]", "ISO weekday"),
    (changed(where={"areas": ["12345"]}), "rules[0].where.areas[0]", "not 6, 9 or 12 digits"),
    (changed(where={"role": "muck_truck"}), "rules[0].where.role", "does not move"),
    (changed(above=None), "rules[0].above", "exactly one of `above` and `below`"),
    (changed(below=40), "rules[0].above", "exactly one of `above` and `below`"),
    (changed(clear_below=80), "rules[0].clear_below", "would clear while it still holds"),
    (changed(clear_above=80), "rules[0].clear_above", "goes with `below`"),
    (changed(above=150), "rules[0].above", "can never be exceeded"),
    (changed(id="Loud Noise"), "rules[0].id", "must be snake_case"),
    (changed(id="rain"), "rules[1].id", "already the id of rules[0]"),
    (changed(states={"special": {"loudness": 3}}), "rules[0].states.special.loudness",
     "has no parameter 'loudness'"),
    (changed(states={"special": {"kind": "wind"}}), "rules[0].states.special.kind",
     "cannot change with the operating state"),
    (changed(states={"special": {"above": "high"}}), "rules[0].states.special.above",
     "Expected `float | null`, got `str`"),
    (changed(states={"special": {"for": "soon"}}), "rules[0].states.special.for",
     "is not like 90s"),
    (changed(states={"special": {"clear_below": 90}}), "rules[0].states.special.clear_below",
     "would clear while it still holds"),
    ({**GOOD, "departments": ["polise"]}, "departments[0]", "unknown department 'polise'"),
    ({**GOOD, "departments": []}, "departments", "at least one department"),
    ({**GOOD, "states": []}, "states", "at least one operating state"),
    ({**GOOD, "rules": []}, "rules", "at least one rule"),
    ({**GOOD, "name": "Street-Music"}, "name", "snake_case"),
    ({**GOOD, "category": {**GOOD["category"], "code": "component.x"}}, "category.code",
     "must start with 'event.'"),
    (changed(titles={"zh-CN": "街头卖艺"}), "rules[0].titles", "a title the rule does not have"),
    (changed(title="Loud", titles={"chinese": "街头卖艺"}), "rules[0].titles.chinese",
     "not a language tag"),
    (changed(title="Loud", titles={"zh-CN": " "}), "rules[0].titles.zh-CN", "must not be empty"),
    (changed(title="Loud", titles={"zh-CN": "响"}, states={"special": {"titles": {}}}),
     "rules[0].states.special.titles", "cannot change with the operating state"),
    ({**GOOD, "category": {**GOOD["category"], "names": {"zh-CN": ""}}},
     "category.names.zh-CN", "must not be empty"),
])
def test_semantic_errors_name_file_and_field(tmp_path, doc, field, words):
    message = error_of(tmp_path, doc)
    assert f"{FILE if doc.get('name') == 'street_music' else 'manifest.yaml'}: {field}: " \
        in message, message
    assert words in message, message


def _rule_doc(rule: dict) -> dict:
    doc = copy.deepcopy(GOOD)
    doc["rules"] = [rule]
    return doc


@pytest.mark.parametrize("rule, field, words", [
    ({"id": "r", "type": "rate_of_change", "kind": "water_depth"}, "rules[0].rise",
     "give `rise` or `fall`"),
    ({"id": "r", "type": "rate_of_change", "kind": "water_depth", "rise": -1}, "rules[0].rise",
     "more than 0"),
    ({"id": "r", "type": "rate_of_change", "kind": "water_depth", "rise": 5, "within": "0s"},
     "rules[0].within", "longer than 0s"),
    ({"id": "w", "type": "window", "kind": "smoke"}, "rules[0].above", "give `above` or"),
    ({"id": "w", "type": "window", "kind": "smoke", "above": 3, "over": "0m"},
     "rules[0].over", "longer than 0s"),
    ({"id": "w", "type": "window", "kind": "smoke", "above": 3, "min_count": 0},
     "rules[0].min_count", "1 or more"),
    ({"id": "a", "type": "absence", "kind": "noise", "periods": 0}, "rules[0].periods",
     "more than 0"),
    ({"id": "c", "type": "camera_event", "kind": "camera", "event": "alien_landing"},
     "rules[0].event", "unknown camera event 'alien_landing'"),
    ({"id": "c", "type": "camera_event", "kind": "noise", "event": "vehicle_in_fire_lane"},
     "rules[0].kind", "does not report camera events"),
    ({"id": "g", "type": "geofence", "kind": "noise", "zones": "muck_forbidden"},
     "rules[0].kind", "does not move"),
    ({"id": "g", "type": "route_deviation", "kind": "gps", "max_distance_m": 0},
     "rules[0].max_distance_m", "more than 0"),
    ({"id": "q", "type": "quiet", "kind": "water_meter", "for": "0.5x"}, "rules[0].for",
     "is not like 90s"),
    ({"id": "b", "type": "baseline", "kind": "kpi", "weeks": 2, "min_history": 3},
     "rules[0].min_history", "between 1 and weeks"),
    ({"id": "b", "type": "baseline", "kind": "kpi", "alpha": 0}, "rules[0].alpha", "(0, 1]"),
    ({"id": "b", "type": "baseline", "kind": "kpi", "z_above": 0}, "rules[0].z_above",
     "more than 0"),
    ({"id": "c", "type": "composite", "all_of": ["c"]}, "rules[0].all_of",
     "at least two rules"),
    ({"id": "c", "type": "composite", "kind": "noise", "all_of": ["x", "y"]}, "rules[0].kind",
     "reads the rules it combines"),
    ({"id": "w", "type": "window", "kind": "smoke", "agg": "max", "above": 3,
      "distinct": "device"}, "rules[0].distinct", "goes with agg: count"),
    ({"id": "o", "type": "outage", "share": 1.5}, "rules[0].share", "share of devices"),
    ({"id": "o", "type": "outage", "per": []}, "rules[0].per", "at least one of"),
    ({"id": "o", "type": "outage", "min_devices": 0}, "rules[0].min_devices", "1 or more"),
    ({"id": "o", "type": "outage", "within": "soon"}, "rules[0].within", "is not like 90s"),
    ({"id": "t", "type": "threshold", "kind": "noise", "above": 80,
      "group": {"by": [], "within": "10m"}}, "rules[0].group.by", "name what alerts"),
    ({"id": "t", "type": "threshold", "kind": "noise", "above": 80,
      "group": {"within": "0s"}}, "rules[0].group.within", "longer than 0s"),
])
def test_rule_errors_per_primitive(tmp_path, rule, field, words):
    message = error_of(tmp_path, _rule_doc(rule))
    assert f"{FILE}: {field}: " in message, message
    assert words in message, message


def test_composite_references_must_resolve(tmp_path):
    doc = copy.deepcopy(GOOD)
    doc["rules"][2]["all_of"] = ["loud", "flood.nope"]
    message = error_of(tmp_path, doc)
    assert f"{FILE}: rules[2].all_of[1]: no rule 'flood.nope' is loaded" in message


def test_composite_may_name_rules_of_other_packs(tmp_path):
    doc = copy.deepcopy(GOOD)
    doc["rules"][2]["all_of"] = ["loud", "flood.heavy_rain"]
    write_pack(tmp_path, doc)
    packs = load_scenarios([tmp_path], kinds=BUILTIN_KINDS)
    assert packs[-1].rules[2].all_of == ["loud", "flood.heavy_rain"]


def test_a_composite_of_a_composite_is_refused(tmp_path):
    doc = copy.deepcopy(GOOD)
    doc["rules"].append({"id": "more", "type": "composite", "all_of": ["both", "loud"]})
    message = error_of(tmp_path, doc)
    assert f"{FILE}: rules[3].all_of[0]: 'street_music.both' is a composite" in message


def test_pack_names_are_unique_across_folders(tmp_path):
    doc = copy.deepcopy(GOOD)
    doc["name"] = "noise"
    write_pack(tmp_path, doc)
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([tmp_path], kinds=BUILTIN_KINDS)
    assert ("noise/manifest.yaml: name: pack 'noise' is already loaded from "
            "scenarios/noise/manifest.yaml") in str(caught.value)


def test_every_problem_is_reported_at_once(tmp_path):
    doc = copy.deepcopy(GOOD)
    doc["departments"] = ["polise"]
    doc["rules"][0]["kind"] = "noize"
    with pytest.raises(ScenarioError) as caught:
        load_one(tmp_path, doc)
    assert len(caught.value.problems) == 2
    assert isinstance(caught.value, ValueError)
