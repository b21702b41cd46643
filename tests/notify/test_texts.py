"""What people read: the gettext catalogs are complete in both languages, and a department's
SMS in a zh-CN city is Chinese (the case's Chinese title, the category's and the place's
Chinese names, never a category code) and fits one segment, the same in English in an en city,
sent through the SMS gateway notifier to a real loopback receiver."""

from __future__ import annotations

import datetime as dt
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import msgspec
import pytest

from cityops.act.desk import IncidentDesk
from cityops.domain.access import Role, Scope
from cityops.domain.city import AreaCodes, WorkCalendar
from cityops.domain.incidents.categories import CategoryTable
from cityops.domain.incidents.model import Report, Status
from cityops.domain.incidents.workflow import Actor, Rules
from cityops.domain.workclock import WorkClock
from cityops.notify.memory import MemoryNotifier
from cityops.notify.sms import SmsGatewayNotifier, _units
from cityops.notify.texts import LANGUAGES, Voice, Voiced, fields_of, locale_of, read_catalog
from cityops.packs.categories_file import default_categories
from cityops.packs.grid import generate as grid_city
from cityops.store.memory import MemoryStore

from .conftest import make_notification

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI).timestamp()
PLACE = AreaCodes("990001", "990001001", "990001001002")
WATER = "event.emergency.waterlogging"
OP = Actor("k_op", Role.OPERATOR, Scope())
SIGNATURE = "【浦东城运】"


def messages(language: str) -> dict[str, str]:
    return {m.id: m.string for m in read_catalog(language) if m.id}


def test_every_message_is_in_every_language_with_the_same_placeholders() -> None:
    english = messages("en")
    assert english, "the English catalog is empty"
    for language in LANGUAGES:
        catalog = read_catalog(language)
        found = messages(language)
        assert set(found) == set(english), f"{language}: msgids differ from English"
        for kind, text in found.items():
            assert text.strip(), f"{language}: {kind} is not translated"
            assert not catalog[kind].fuzzy, f"{language}: {kind} is marked fuzzy"
            assert fields_of(text) == fields_of(english[kind]), \
                f"{language}: {kind} fills {fields_of(text)}, English {fields_of(english[kind])}"
    chinese = messages("zh-CN")
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in text) for text in chinese.values())


def test_the_catalogs_ship_as_package_data() -> None:
    # A fresh `pip install` must carry them: the package-data patterns of pyproject.toml match.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["cityops"]
    package = ROOT / "src" / "cityops"
    for language in LANGUAGES:
        po = package / "locales" / locale_of(language) / "LC_MESSAGES" / "cityops.po"
        assert po.is_file()
        assert any(fnmatch(str(po.relative_to(package)), p) for p in patterns)
    assert any(dep.startswith("babel") for dep in config["project"]["dependencies"])


def zh_city():
    pack = grid_city(devices={"noise": 2})
    return msgspec.structs.replace(pack, info=msgspec.structs.replace(pack.info,
                                                                      language="zh-CN"))


async def dispatch_sms(pack, hooks) -> tuple[str, dict]:
    """A waterlogging case dispatched in `pack`'s city; the text its police SMS carried."""
    rules = Rules(CategoryTable(default_categories([d.code for d in pack.departments])),
                  WorkClock(WorkCalendar(timezone="Asia/Shanghai")), district="990001")
    gateway = SmsGatewayNotifier(hooks.url("sms"), phones={"police": "13800000110"},
                                 prefix=SIGNATURE)
    voice = Voice.for_city(pack, categories=rules.categories)
    desk = IncidentDesk(MemoryStore(), rules, Voiced(gateway, voice), clock=lambda: T0)
    await gateway.async_start()
    report = Report("r-1", "inspector", T0, lat=31.2, lon=121.5)
    res = await desk.async_report(
        report, WATER, actor=OP, areas=PLACE, auto_register=True, departments=["police"],
        title="Water 20 cm deep across Xiuyan Road, two lanes closed to traffic",
        titles={"zh-CN": "秀沿路积水20厘米"})
    assert res.incident.status is Status.DISPATCHED
    [got] = await hooks.wait_for("sms", 1)
    await gateway.async_stop()
    return msgspec.json.decode(got.body)["text"], res.incident.orders[0]


async def test_a_departments_sms_in_a_zh_cn_city_is_chinese_and_one_segment(hooks) -> None:
    text, order = await dispatch_sms(zh_city(), hooks)
    due = dt.datetime.fromtimestamp(order.accept_due, SHANGHAI).strftime("%H:%M")
    assert text.startswith(f"{SIGNATURE}新派单：积水内涝，第1街镇第2居村，请{due}前接单")
    assert "秀沿路积水20厘米" in text
    assert WATER not in text and "event." not in text and "Water" not in text
    assert _units(text) <= 70


async def test_the_same_sms_in_an_en_city_is_english(hooks) -> None:
    text, order = await dispatch_sms(grid_city(devices={"noise": 2}), hooks)
    assert text.startswith(f"{SIGNATURE}New order: Waterlogging or flooding, Town 1 Village 2.")
    assert WATER not in text and "Xiuyan" not in text and _units(text) <= 70


async def test_subject_and_body_stay_the_structured_english_fields() -> None:
    memory = MemoryNotifier()
    voiced = Voiced(memory, Voice.for_city(zh_city()))
    n = make_notification(kind="kiosk.code", data={"code": "042917", "minutes": 5})
    await voiced.async_send(n)
    [sent] = memory.sent
    assert (sent.subject, sent.body, sent.data) == (n.subject, n.body, n.data)
    assert sent.lang == "zh-CN"
    assert sent.text == "自助终端登录验证码042917，5分钟内有效，请勿告诉他人。"
    # A citizen's own language, when the notice carries it, wins over the city's.
    await voiced.async_send(make_notification("wo-2", kind="kiosk.code",
                                              data={"code": "1", "minutes": 5, "lang": "en"}))
    assert memory.sent[1].lang == "en" and memory.sent[1].text.startswith("Your kiosk")
    # A kind without a message gets no text: the SMS falls back to subject and body.
    await voiced.async_send(make_notification("wo-3"))
    assert memory.sent[2].text == "" and memory.sent[2].lang == ""


@pytest.mark.parametrize("language", LANGUAGES)
def test_times_are_the_citys_clock_in_the_language(language) -> None:
    voice = Voice(language, "Asia/Shanghai")
    later = T0 + 5 * 3600 + 35 * 60  # 15:35 in Shanghai
    expected = {"en": "3:35\u202fPM", "zh-CN": "15:35"}[language]
    assert voice.when(later, language, T0).replace(" ", "\u202f") == expected
    assert voice.when(later + 86400, language, T0).startswith(
        {"en": "Nov 24", "zh-CN": "11月24日"}[language])


async def test_a_variant_of_a_kinds_message_and_a_due_time_in_the_city() -> None:
    memory = MemoryNotifier()
    voiced = Voiced(memory, Voice.for_city(zh_city()))
    await voiced.async_send(make_notification(
        "r-1", kind="review.task_overdue", created=T0,
        data={"subject": "20261123-K7Q2MX4P", "message": "review.task_overdue.callback"}))
    await voiced.async_send(make_notification(
        "h-1", kind="hotline.assigned", created=T0,
        data={"number": "20261123-K7Q2MX4P", "title": "楼上噪音", "due": T0 + 3 * 3600}))
    # A variant must be the kind's own: another kind's message is never borrowed.
    await voiced.async_send(make_notification(
        "x-1", kind="review.bad", data={"subject": "s", "message": "kiosk.code"}))
    assert [n.text for n in memory.sent] == [
        "差评回访超时：20261123-K7Q2MX4P，请尽快回访市民。",
        "12345派单20261123-K7Q2MX4P，请于13:00前答复。楼上噪音",
        "差评提醒：s，请1个工作日内回访市民、15日内整改。"]


def test_the_english_messages_keep_to_the_gsm_alphabet():
    # One curly quote or long dash would send every English SMS as UCS-2: 70 units, not 160.
    from cityops.notify.sms import gsm_septets

    outside = [(m.id, m.string) for m in read_catalog("en")
               if m.id and gsm_septets(m.string) is None]
    assert outside == []
