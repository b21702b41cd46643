// The public licence check (/verify): a code typed or brought by the QR code (?code=) is sent
// to GET /api/v1/licences/verify/{code}, which needs no key, and the answer is shown in the
// page's language. The page keeps nothing: no key, no storage besides the language chosen.
import { initI18n, t, language, languageSwitcher, onLanguageChange } from "/static/i18n.js";

const $ = (id) => document.getElementById(id);
const MAX = 64; // the server reads no more of a code either
let last = null; // the last answer, redrawn when the language changes

function day(iso) {
  if (!iso) return "";
  // A calendar date, not an instant: shown as the date it is, in the page's language.
  const [y, m, d] = iso.split("-").map(Number);
  return new Intl.DateTimeFormat(language(), { dateStyle: "long", timeZone: "UTC" })
    .format(new Date(Date.UTC(y, m - 1, d)));
}

function show(kind, title, text) {
  $("result").hidden = false;
  $("verdict").className = `verdict ${kind}`;
  $("verdict-title").textContent = title;
  $("verdict-text").textContent = text;
}

function draw() {
  if (!last) return;
  const { status, body } = last;
  $("facts").hidden = true;
  $("checked").textContent = "";
  if (status === "malformed") {
    show("bad", t("verify:verdict.not_genuine"), t("verify:malformed"));
    return;
  }
  if (status === "busy") {
    show("warn", t("verify:verdict.try_again"), t("verify:busy"));
    return;
  }
  if (status === "failed") {
    show("warn", t("verify:verdict.try_again"), t("verify:failed"));
    return;
  }
  if (!body.genuine) {
    show("bad", t("verify:verdict.not_genuine"), t("verify:not_genuine", { code: body.code }));
  } else {
    const kind = body.state === "valid" ? "ok" : body.state === "revoked" ? "bad" : "warn";
    show(kind, t(`verify:verdict.${body.state}`), t(`verify:explain.${body.state}`, {
      from: day(body.valid_from), until: day(body.valid_until), revoked: day(body.revoked_on),
    }));
    const zh = language() === "zh-CN";
    $("f-type").textContent = (zh && body.type_name_zh) || body.type_name || body.type_name_zh;
    $("f-holder").textContent = body.holder || t("verify:field.unknown");
    $("f-from").textContent = day(body.valid_from);
    $("f-until").textContent = body.valid_until ? day(body.valid_until) : t("verify:field.no_end");
    $("f-revoked").textContent = day(body.revoked_on);
    $("f-revoked").hidden = $("f-revoked-label").hidden = !body.revoked_on;
    $("f-code").textContent = body.code;
    $("facts").hidden = false;
  }
  $("checked").textContent = t("verify:checked_on", { day: day(body.checked_on) });
}

async function check(code) {
  code = code.trim().slice(0, MAX);
  if (!code) return;
  $("go").disabled = true;
  $("result").setAttribute("aria-busy", "true");
  try {
    const res = await fetch(`/api/v1/licences/verify/${encodeURIComponent(code)}`, {
      headers: { Accept: "application/json" }, cache: "no-store",
    });
    const body = await res.json().catch(() => ({}));
    if (res.ok) last = { status: "ok", body };
    // 404: text with a "/" or a lone "." or ".." reaches no route at all; not a code either.
    else if (res.status === 400 || res.status === 404) last = { status: "malformed", body };
    else if (res.status === 429 || res.status === 503) last = { status: "busy", body };
    else last = { status: "failed", body };
    // The address now names the code checked, so it can be reloaded or passed on.
    const url = new URL(location.href);
    url.searchParams.set("code", code);
    history.replaceState(null, "", url);
  } catch {
    last = { status: "failed", body: {} };
  } finally {
    $("go").disabled = false;
    $("result").removeAttribute("aria-busy");
  }
  draw();
  document.body.dataset.checked = last.status === "ok"
    ? (last.body.genuine ? last.body.state : "not_genuine") : last.status;
}

async function main() {
  await initI18n(["verify"]);
  document.title = `${document.title.split(" · ")[0]} · ${t("verify:brand")}`;
  $("lang").append(languageSwitcher());
  onLanguageChange(draw);
  $("check").addEventListener("submit", (e) => {
    e.preventDefault();
    check($("code").value);
  });
  const given = new URLSearchParams(location.search).get("code");
  if (given) {
    $("code").value = given.slice(0, MAX);
    await check(given);
  }
  document.body.dataset.ready = "1";
}

main();
