"""Chinese and English in Debian's Chromium (issue 17 item 2): a browser set to Chinese gets the
pages in Chinese with no English label left (proper names aside), the city's own names in
Chinese; the switcher changes the language and the choice outlives a reload; dates, spans and
numbers follow the language; an API error is shown by its code's translation."""

from __future__ import annotations

import re
import time

import msgspec
import pytest

from cityops.domain.scenarios.signals import Signal

from .conftest import KEYS, VILLAGE11, WebNode, signed_in, web_city

ZH = {"locale": "zh-CN", "timezone_id": "Asia/Shanghai"}
EN = {"locale": "en-US", "timezone_id": "Asia/Shanghai"}
CJK = re.compile(r"[\u4e00-\u9fff]")
# What may stay in Latin letters on a Chinese page: the product's name, the other language's
# own name on the switcher, key caps, units and the ids of records (san-01, truck-01 ...).
PROPER = {"CityOps", "English", "Enter", "dB", "km", "PM2.5", "j", "k", "n", "x", "r", "d", "a",
          "e", "v", "c"}
ID = re.compile(r"^[a-z]+-\d+$|^[A-Z]{1,3}\d*$|^\d")
NAMES = {"police": "公安", "city_management": "城市管理", "sanitation": "环卫", "environment": "生态环境"}


def i18n_city():
    """The web tests' grid city, its departments with their Chinese names."""
    pack = web_city()
    departments = [msgspec.structs.replace(d, names={"zh-CN": NAMES[d.code]})
                   for d in pack.departments]
    return msgspec.structs.replace(pack, departments=departments)


@pytest.fixture(scope="module")
def web_node(tmp_path_factory):
    keys = {**KEYS, "li": ("citizen", None, "c-000123")}
    node = WebNode(i18n_city(), tmp_path_factory.mktemp("i18n") / "data", keys)
    node.start()
    node.place_everyone()
    with node.client("operator") as op:
        r = op.post("/api/v1/citizens", json={"id": "c-000123", "name": "Li Wei",
                                              "phone": "13812345678", "area": VILLAGE11})
        assert r.status_code in (200, 201), r.text
    node.stall_case = node.call(_stall_alert(node.node))
    try:
        yield node
    finally:
        node.stop()


# The shipped street_stall pack's rule, as detection raises it and the act side files it: its
# category is not in the city's table, so its name comes from the pack too.
STALL = {"zh": ("车行道占道设摊", "占道经营"),
         "en": ("Stall on the carriageway", "Carriageway occupied by a stall")}


async def _stall_alert(node) -> str:
    at = time.time()
    signal = Signal("street_stall.on_carriageway", "cell:stall-1", True, int(at * 1e6),
                    lat=31.1515, lon=121.4515, detail="stall on the carriageway for 12 min")
    [event] = node.detect.episodes.apply([signal], lambda device: 0)
    await node.act.intake.take(event)
    case = await node.store.incident_of_report(f"alert:{event.alert.id}")
    assert case is not None
    return case


# Every visible text and every visible label attribute, with the Latin words in it; text marked
# translate="no" (what people wrote, names of people, record ids) and the brand are not labels.
ENGLISH = """() => {
  const out = [];
  const shown = (el) => el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const label = (el) => !el.closest('[translate="no"], .brand, script, style');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    const text = n.textContent.trim();
    if (text && shown(el) && label(el)) out.push(text);
  }
  for (const el of document.querySelectorAll("[placeholder], [title], [aria-label], [alt]")) {
    if (!shown(el) || !label(el)) continue;
    for (const a of ["placeholder", "title", "aria-label", "alt"]) {
      if (el.getAttribute(a)) out.push(el.getAttribute(a));
    }
  }
  out.push(document.title);
  return out;
}"""


def english_left(page) -> list[str]:
    found = []
    for text in page.evaluate(ENGLISH):
        # a path or an address (/status.json, sqlite:///var/...) is not a label
        for word in re.findall(r"[A-Za-z][A-Za-z0-9.\-]*", re.sub(r"\S*/\S*", "", text)):
            if word not in PROPER and not ID.match(word):
                found.append(f"{word!r} in {text!r}")
    return found


def _console(browser, web_node, options, key="operator"):
    context, page = signed_in(browser, web_node.url, web_node.keys[key], "/console",
                              viewport=(1600, 1000), **options)
    page.wait_for_selector("#conn.live", timeout=60_000)
    return context, page


def test_a_chinese_browser_gets_the_pages_in_chinese(web_node, browser, artifacts):
    context, page = signed_in(browser, web_node.url, web_node.keys["operator"], "/screen", **ZH)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Generous: the machine may be busy, and a software-rendered WebGL is slow to start.
    page.wait_for_function("window.cityops && window.cityops.stats.firstRender !== null",
                           timeout=90_000)
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.locator("#by-dept").locator("xpath=..").locator("h2").inner_text() == "各部门在办案件"
    # The city's own names, from the pack, in Chinese: the city, the areas on the map.
    page.wait_for_function("document.querySelector('#city').textContent === '网格市'")
    assert sorted(page.locator(".area-label").all_inner_texts()) == ["第1街镇", "第2街镇"]
    assert page.locator("#crumbs").inner_text().strip() == "网格区"
    page.wait_for_function("document.querySelector('#conn').textContent === '● 实时'")
    assert page.locator(".lang-switch").inner_text() == "English"
    # A case a scenario rule opened, titled in Chinese in the case list.
    stall = page.locator(f"#feed-list li[data-id='{web_node.stall_case}'] .what b")
    stall.wait_for(timeout=20_000)
    assert stall.inner_text() == STALL["zh"][0]
    page.screenshot(path=str(artifacts / "i18n-screen-zh.png"))
    left = english_left(page)
    assert not left, left
    assert errors == []
    context.close()


@pytest.mark.parametrize("path, key, ready", [
    ("/console", "operator", "#conn.live"),
    ("/field", "san-01", "#orders p.quiet, #orders article"),
    ("/citizen", "li", "body.ready"),
])
def test_no_english_label_on_a_chinese_page(web_node, browser, artifacts, path, key, ready):
    context, page = signed_in(browser, web_node.url, web_node.keys[key], path, **ZH)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.wait_for_selector(ready, timeout=20_000)
    page.wait_for_function("document.documentElement.lang === 'zh-CN'")
    # The labels the script writes after its first answers (the queue, the orders, the tabs).
    page.wait_for_function("!document.body.innerText.includes('加载中')", timeout=20_000)
    page.screenshot(path=str(artifacts / f"i18n{path.replace('/', '-')}-zh.png"))
    left = english_left(page)
    assert not left, left
    assert CJK.search(page.locator("body").inner_text())
    assert errors == []
    context.close()


def test_the_status_page_in_chinese(web_node, browser):
    context = browser.new_context(bypass_csp=True, **ZH)
    page = context.new_page()
    page.goto(f"{web_node.url}/")
    page.wait_for_function("document.documentElement.lang === 'zh-CN'")
    page.wait_for_selector(".lang-switch")
    assert "每秒入库读数" in page.locator("body").inner_text()
    left = english_left(page)
    assert not left, left
    context.close()


def test_the_language_chosen_is_remembered(web_node, browser):
    context, page = _console(browser, web_node, ZH)
    head = page.locator("#queue th[data-sort=due]")
    assert head.text_content() == "时限"
    page.click(".lang-switch")
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert head.text_content() == "Deadline"
    assert page.locator("#conn").inner_text() == "● LIVE"
    assert page.locator(".lang-switch").inner_text() == "中文"
    # What the script drew is drawn again in English too, not only the marked-up text.
    assert page.locator("#queue-count").inner_text().endswith(("shown", "overdue", "open"))
    page.reload()
    page.wait_for_selector("#conn.live", timeout=20_000)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert head.text_content() == "Deadline"
    page.click(".lang-switch")
    page.wait_for_function("document.documentElement.lang === 'zh-CN'")
    page.reload()
    page.wait_for_selector("#conn.live", timeout=20_000)
    assert head.text_content() == "时限"
    context.close()

    # Another person's browser, in English, is not told what this one chose.
    context, page = _console(browser, web_node, EN)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("#queue th[data-sort=due]").text_content() == "Deadline"
    context.close()


def test_dates_spans_and_numbers_follow_the_language(web_node, browser):
    with web_node.client("operator") as op:
        r = op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", "title": "Rubbish by the gate",
            "lat": 31.152, "lon": 121.452, "source": "operator", "key": f"i18n-{time.time()}"})
        assert r.status_code in (200, 201), r.text
        incident = r.json()["id"]
    row = f"#queue tr[data-id='{incident}']"
    stall = f"#queue tr[data-id='{web_node.stall_case}'] td.title"
    seen = {}
    for name, options in (("zh", ZH), ("en", EN)):
        context, page = _console(browser, web_node, options)
        page.select_option("#queue-filter", "all")
        page.wait_for_selector(row, timeout=10_000)
        seen[name] = {
            "when": page.locator(f"{row} td.when").inner_text(),
            "due": page.locator(f"{row} td.due").inner_text(),
            "area": page.locator(f"{row} td").nth(3).inner_text(),
            "category": page.locator(f"{row} td.title small").inner_text(),
            "stall": (page.locator(f"{stall} b").inner_text(),
                      page.locator(f"{stall} small").inner_text()),
            "number": page.evaluate("""async () => {
                const m = await import('/static/i18n.js');
                return [m.fmtNumber(12345.5), m.fmtNumber(123456, { notation: 'compact' })];
            }"""),
        }
        context.close()
    zh, en = seen["zh"], seen["en"]
    assert re.fullmatch(r"\d{1,2}月\d{1,2}日 \d{2}:\d{2}", zh["when"]), zh["when"]
    assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{2}:\d{2}", en["when"]), en["when"]
    # A deadline in the future: "in 2 h 10 min" and "2小时10分钟后" (the working clock decides how far).
    assert en["due"].startswith("in ") and zh["due"].endswith("后") and CJK.search(zh["due"])
    assert zh["area"] == "第1街镇第1居村" and en["area"] == "Town 1 Village 1"
    assert zh["category"] == "暴露垃圾" and en["category"] == "Exposed garbage"
    # A scenario rule's case: its title and its pack's category in the page's language.
    assert zh["stall"] == STALL["zh"] and en["stall"] == STALL["en"]
    assert zh["number"] == ["12,345.5", "12万"] and en["number"] == ["12,345.5", "123K"]


def test_an_api_error_is_shown_translated(web_node, browser):
    context, page = _console(browser, web_node, ZH, key="operator_town2")
    page.goto(f"{web_node.url}/console#incident=no-such-case")
    refusal = page.locator("#detail .refusal")
    refusal.wait_for(timeout=10_000)
    # The code's translation; the server's English message stays beside it as the detail.
    text = refusal.inner_text()
    assert text.startswith("未找到（404）：未找到，或不在该密钥覆盖的区域内"), text
    assert "no incident 'no-such-case'" in text
    assert page.locator("#detail .empty").inner_text() == "该案件不存在，或不在您的密钥覆盖区域内。"
    page.click(".lang-switch")
    page.wait_for_function("document.documentElement.lang === 'en'")
    page.goto(f"{web_node.url}/console#incident=another-missing-case")
    page.reload()
    refusal = page.locator("#detail .refusal")
    refusal.wait_for(timeout=10_000)
    assert refusal.inner_text() == "Not found (404): no incident 'another-missing-case'"
    context.close()
