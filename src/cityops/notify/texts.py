"""What a person reads of a notification, in their language: gettext catalogs and the notifier
that writes each notification's `text` from its kind and data.

The catalogs are `cityops/locales/<locale>/LC_MESSAGES/cityops.po`, one message per
notification kind: the msgid is the kind ("order.dispatched"), the msgstr the text with
`{placeholders}` filled from the notification's data. Keyed by kind rather than by English
sentence, as the pages' i18next files are keyed, so that the English wording can be edited
in its own catalog without orphaning every translation. Babel compiles them in memory when a
node makes its `Voice`, at start (`pofile.read_po` then `mofile.write_mo`), so a broken
catalog stops the start rather than a message; nothing compiled is shipped or cached on disk,
so an edited .po takes effect on the next start.

`Voiced` sits in front of the node's notifier: the code that composes a notification keeps
writing its English `subject`/`body` (the webhook and API contract) and puts the facts in
`data`; `Voiced` adds `text` and `lang`, which the SMS notifier sends. A kind with no
message in the catalogs gets no `text`, and the SMS falls back to subject and body.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
import re
import string
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from babel.dates import format_skeleton, format_time
from babel.messages import mofile, pofile
from babel.support import Translations

from cityops.domain.city import name_in
from cityops.notify.base import Notification, Notifier

log = logging.getLogger(__name__)

DOMAIN = "cityops"
LANGUAGES = ("en", "zh-CN")  # BCP 47 tags, as the pages and the packs' `names` spell them
DEFAULT_LANGUAGE = "en"


def locale_of(language: str) -> str:
    """The gettext/Babel locale folder of a BCP 47 tag: "zh-CN" -> "zh_CN"."""
    return language.replace("-", "_")


def language_of(tag: str | None) -> str | None:
    """`tag` as one of LANGUAGES ("zh", "zh-cn", "zh_CN" -> "zh-CN"), or None."""
    if not tag:
        return None
    low = tag.strip().replace("_", "-").lower()
    for language in LANGUAGES:
        if low == language.lower() or low.split("-")[0] == language.lower().split("-")[0]:
            return language
    return None


def read_catalog(language: str) -> Any:
    """The parsed .po of `language` (a babel Catalog)."""
    folder = resources.files("cityops") / "locales" / locale_of(language) / "LC_MESSAGES"
    with (folder / f"{DOMAIN}.po").open("rb") as fp:
        return pofile.read_po(fp, locale=locale_of(language), domain=DOMAIN)


@functools.cache
def translations(language: str) -> Translations:
    """The compiled catalog of `language`, falling back to English for a message it lacks."""
    compiled = io.BytesIO()
    mofile.write_mo(compiled, read_catalog(language), use_fuzzy=False)
    compiled.seek(0)
    found = Translations(compiled, domain=DOMAIN)
    if language != DEFAULT_LANGUAGE:
        found.add_fallback(translations(DEFAULT_LANGUAGE))
    return found


def fields_of(template: str) -> set[str]:
    """The `{placeholders}` a message fills."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def say(language: str, kind: str, **fields: Any) -> str | None:
    """The message for `kind` in `language` with `fields` filled in; None when the catalogs
    have no message for the kind. A field the caller lacks is left blank, not an error: a
    notice missing one fact still goes out."""
    template = translations(language).gettext(kind)
    if template == kind:
        return None
    text = template.format_map(_Blank(fields))
    # A blank field leaves its separator behind ("，，" or ", ,"): fold those away.
    return _HOLES.sub(lambda m: m.group(1), text).strip(" ,，:：")


_HOLES = re.compile(r"([,，:：])(?:\s*[,，])+")


class Voice:
    """How the city speaks to people: its language and time zone, and the names of its areas,
    departments and categories in that language."""

    def __init__(self, language: str = DEFAULT_LANGUAGE, timezone: str = "UTC", *,
                 areas: Mapping[str, Any] | None = None,
                 departments: Mapping[str, Any] | None = None,
                 category: Callable[[str], Any] | None = None) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
        self.language = language
        translations(language)  # compiled now: a broken catalog fails the start, not a send
        self.zone = ZoneInfo(timezone)
        self._areas = areas or {}
        self._departments = departments or {}
        self._category = category or (lambda code: None)

    @classmethod
    def for_city(cls, pack: Any, city: Any = None, categories: Any = None) -> Voice:
        """The voice of a city pack (`info.language`, `info.timezone`), naming areas from
        `city` (a CityMap) or the pack, and categories from `categories` (a CategoryTable)
        or the pack's."""
        areas = {a.code: a for a in pack.areas}
        departments = {d.code: d for d in pack.departments}
        if categories is not None:
            lookup = categories.get
        else:
            table = {c.code: c for c in pack.categories}
            lookup = table.get
        return cls(language_of(pack.info.language) or DEFAULT_LANGUAGE, pack.info.timezone,
                   areas=areas, departments=departments, category=lookup)

    def area(self, code: str, language: str) -> str:
        return name_in(self._areas.get(code), language) if code else ""

    def place(self, areas: Mapping[str, Any] | None, language: str) -> str:
        """Town and village: "周浦镇沈梅村", "Shenmei Village, Zhoupu Town"."""
        if not areas:
            return ""
        town, village = self.area(areas.get("town", ""), language), \
            self.area(areas.get("village", ""), language)
        if town and town in village:  # some packs name a village with its town already
            return village
        if language == "zh-CN":
            return f"{town}{village}"
        return ", ".join(p for p in (village, town) if p)

    def department(self, code: str, language: str) -> str:
        return name_in(self._departments.get(code), language) or code

    def category(self, code: str, language: str) -> str:
        found = self._category(code) if code else None
        if found is None:
            # Never the code itself: "event.emergency.waterlogging" means nothing to a reader.
            return ""
        return name_in(found, language)

    def when(self, epoch: float, language: str, now: float | None = None) -> str:
        """A clock time in the city ("14:35", "2:35 PM"), with the day in front when it is
        not the day of `now` ("12月8日 09:00", "Dec 8, 9:00 AM")."""
        moment = dt.datetime.fromtimestamp(epoch, self.zone)
        locale = locale_of(language)
        if now is not None and dt.datetime.fromtimestamp(now, self.zone).date() == moment.date():
            return format_time(moment, "short", tzinfo=self.zone, locale=locale)
        day = format_skeleton("MMMd", moment, tzinfo=self.zone, locale=locale)
        clock = format_time(moment, "short", tzinfo=self.zone, locale=locale)
        return f"{day} {clock}"

    def day(self, day: str | dt.date, language: str) -> str:
        when = dt.date.fromisoformat(day) if isinstance(day, str) else day
        return format_skeleton("MMMd", when, locale=locale_of(language))

    def fields(self, n: Notification, language: str) -> dict[str, Any]:
        """The notification's data as the message's fields, codes made names and epoch times
        clock times in the city."""
        d = n.data
        out: dict[str, Any] = {k: v for k, v in d.items()
                               if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
        titles = d.get("titles")
        if isinstance(titles, Mapping) and titles.get(language):
            out["title"] = titles[language]
        out["category"] = self.category(str(d.get("category", "")), language)
        if isinstance(d.get("areas"), Mapping):
            out["place"] = self.place(d["areas"], language)
        if isinstance(d.get("department"), str):
            out["department"] = self.department(d["department"], language)
        for key in ("due", "deadline"):
            if isinstance(d.get(key), (int, float)) and not isinstance(d[key], bool):
                out[key] = self.when(float(d[key]), language, n.created or None)
        if isinstance(d.get("day"), str):
            try:
                out["day"] = self.day(d["day"], language)
            except ValueError:
                pass
        return out

    def text(self, n: Notification) -> tuple[str, str] | None:
        """(text, language) for `n`: in the language its data asks for (a citizen's own,
        `data["lang"]`) when there is a catalog for it, else the city's."""
        language = language_of(str(n.data.get("lang", ""))) or self.language
        # `message` picks a variant of the kind's message (a queue call with no window).
        message = n.data.get("message")
        key = (message if isinstance(message, str) and message.startswith(n.kind + ".")
               else n.kind)
        written = say(language, key, **self.fields(n, language))
        return (written, language) if written else None


class Voiced:
    """A notifier that writes each notification's `text` and `lang` and hands it on to
    `inner`. A notification that has them already is passed on as it is."""

    def __init__(self, inner: Notifier, voice: Voice) -> None:
        self.inner = inner
        self.voice = voice

    async def async_send(self, n: Notification) -> None:
        if not n.text:
            try:
                written = self.voice.text(n)
            except Exception:
                # A message that cannot be written must not cost the notification itself.
                log.exception("no text for notification %s (%s)", n.id, n.kind)
                written = None
            if written is not None:
                n = msgspec.structs.replace(n, text=written[0], lang=written[1])
        await self.inner.async_send(n)

    async def async_start(self) -> None:
        await self.inner.async_start()

    async def async_stop(self) -> None:
        await self.inner.async_stop()

    def stats(self) -> dict[str, Any]:
        return self.inner.stats()
