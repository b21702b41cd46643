"""The locale files in step: every namespace a page loads exists in both languages with the same
keys (plural forms aside: English says one and other, Chinese other only) and no
{{values}} the English lacks; the Chinese is Chinese; and every key the pages name literally exists.

No browser: this reads the files (src/cityops/web/static/locales/<lng>/<ns>.json) and the
pages' sources, so a key added in one language only fails here before anyone sees a page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "src" / "cityops" / "web"
LOCALES = WEB / "static" / "locales"
LANGUAGES = ("en", "zh-CN")
PLURAL = re.compile(r"_(zero|one|two|few|many|other)$")
VALUE = re.compile(r"{{\s*([\w.]+)\s*}}")
# Latin words a Chinese string may keep: names of products, protocols and formats, units.
KEPT = {"CityOps", "API", "Open311", "JSON", "ID", "GPS", "PM2.5", "SMS", "English", "CSV",
        "XLSX", "PDF", "QR", "km", "dB", "status", "json", "metrics", "healthz", "openapi"}


def flat(doc: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, f"{path}."))
        else:
            out[path] = value
    return out


def load(lng: str, ns: str) -> dict[str, str]:
    with open(LOCALES / lng / f"{ns}.json", encoding="utf-8") as f:
        return flat(json.load(f))


def namespaces() -> list[str]:
    return sorted({p.stem for lng in LANGUAGES for p in (LOCALES / lng).glob("*.json")})


def base(key: str) -> str:
    return PLURAL.sub("", key)


def test_mine_are_all_there() -> None:
    # The namespaces of the pages present before issue 17; others add theirs (admin, care ...).
    assert {"common", "errors", "screen", "console", "citizen", "field", "replay", "storm",
            "community", "cameras", "status"} <= set(namespaces())


@pytest.mark.parametrize("ns", namespaces())
def test_both_languages_have_the_same_keys(ns: str) -> None:
    missing = [lng for lng in LANGUAGES if not (LOCALES / lng / f"{ns}.json").is_file()]
    assert not missing, f"{ns}.json is missing in {missing}"
    en, zh = load("en", ns), load("zh-CN", ns)
    only_en = sorted({base(k) for k in en} - {base(k) for k in zh})
    only_zh = sorted({base(k) for k in zh} - {base(k) for k in en})
    assert not only_en, f"{ns}: in en, not in zh-CN: {only_en}"
    assert not only_zh, f"{ns}: in zh-CN, not in en: {only_zh}"
    # A plural needs its "other" form in each language (Chinese has no other).
    for lng, doc in (("en", en), ("zh-CN", zh)):
        for key in doc:
            if PLURAL.search(key):
                assert f"{base(key)}_other" in doc, f"{ns} ({lng}): {key} without {base(key)}_other"


@pytest.mark.parametrize("ns", namespaces())
def test_the_chinese_fills_in_only_values_the_english_has(ns: str) -> None:
    en, zh = load("en", ns), load("zh-CN", ns)
    english = {base(k): set(VALUE.findall(v)) for k, v in en.items()}
    for key, text in zh.items():
        wanted = english.get(base(key), set())
        have = set(VALUE.findall(text))
        # A translation may leave a value out (the English message of an error, in Chinese
        # where the code says it all), never fill in one the English does not have.
        assert have <= wanted, f"{ns}: {key}: {have - wanted} are not values of the English"


@pytest.mark.parametrize("ns", namespaces())
def test_the_chinese_is_chinese(ns: str) -> None:
    en, zh = load("en", ns), load("zh-CN", ns)
    untranslated = []
    for key, text in zh.items():
        words = re.findall(r"[A-Za-z][A-Za-z0-9.]+", VALUE.sub("", text))
        if [w for w in words if w not in KEPT] and not re.search(r"[\u4e00-\u9fff]", text):
            untranslated.append((key, text, en.get(key)))
    assert not untranslated, f"{ns}: English left in zh-CN: {untranslated[:5]}"


# t("ns:key" ...) and data-i18n="ns:key" / data-i18n-attr="attr=ns:key;..." with a literal key.
USED = re.compile(r"""\b(?:t|say)\(\s*["']([a-zA-Z]+):([\w.]+)["']""")
MARKED = re.compile(r"""data-i18n=["']([a-zA-Z]+):([\w.]+)["']""")
ATTRS = re.compile(r"""data-i18n-attr=["']([^"']+)["']""")


def used_keys() -> list[tuple[str, str, str]]:
    out = []
    # i18n.js itself only shows the markup in its header comment.
    sources = [*WEB.glob("*.html"), *(p for p in (WEB / "static").glob("*.js") if p.name != "i18n.js"),
               WEB.parent / "api" / "status.py"]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        out += [(path.name, ns, key) for ns, key in USED.findall(text) + MARKED.findall(text)]
        for spec in ATTRS.findall(text):
            for pair in spec.split(";"):
                if "=" in pair and ":" in pair:
                    ns, key = pair.split("=", 1)[1].strip().split(":", 1)
                    out.append((path.name, ns, key))
    return out


def test_every_key_a_page_names_exists() -> None:
    have = set(namespaces())
    missing = []
    for source, ns, key in used_keys():
        if ns not in have:
            missing.append((source, f"{ns}:{key}", "no such namespace"))
            continue
        en = load("en", ns)
        if key not in en and f"{key}_other" not in en:
            missing.append((source, f"{ns}:{key}", "no such key"))
    assert not missing, missing[:10]
