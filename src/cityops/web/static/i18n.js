// Every page's words in zh-CN and English, through i18next (vendored from npm, pinned).
//
// A page calls `await initI18n(["screen"])` once before it draws: the language is taken from
// `?lang=`, then the one the person chose before (localStorage), then the browser's; the
// namespaces' JSON files are fetched from /static/locales/<lng>/<ns>.json ("common" always).
// Static HTML is marked up, not scripted:
//   <h2 data-i18n="screen:vital.title">Vital signs</h2>       text (the English stays as-is
//                                                              until the translation loads)
//   <input data-i18n-attr="placeholder=citizen:search.hint">   attributes, `;`-separated
// Script-made text uses `t("ns:key", {count, ...})`; numbers and times go through `fmtNumber` /
// `fmtDateTime` so they follow the language too. API errors stay English on the wire with a
// stable `code`; `errorText(body)` shows the code's translation ("errors" namespace), else the
// English message (the error body's shape is set in cityops/api/errors.py).
import i18next from "/static/vendor/i18next.mjs";
import LanguageDetector from "/static/vendor/i18next-browser-languagedetector.mjs";

export const LANGUAGES = ["zh-CN", "en"];
const STORE_KEY = "cityops.lang";
const loaded = new Set();

async function fetchNamespace(lng, ns) {
  const key = `${lng}/${ns}`;
  if (loaded.has(key)) return;
  loaded.add(key);
  const res = await fetch(`/static/locales/${lng}/${ns}.json`, { cache: "no-cache" });
  // A namespace a page names but nobody has translated yet is not fatal: its keys fall back.
  if (!res.ok) return;
  i18next.addResourceBundle(lng, ns, await res.json(), true, true);
}

async function loadAll(lng, namespaces) {
  const wanted = new Set([lng, "en"]);
  await Promise.all([...wanted].flatMap((l) => namespaces.map((ns) => fetchNamespace(l, ns))));
}

let pageNamespaces = ["common", "errors"];

export async function initI18n(namespaces = []) {
  pageNamespaces = [...new Set(["common", "errors", ...namespaces])];
  await i18next.use(LanguageDetector).init({
    supportedLngs: LANGUAGES,
    // "zh", "zh-Hans" and "zh-SG" browsers are shown the zh-CN pages.
    nonExplicitSupportedLngs: false,
    load: "currentOnly",
    fallbackLng: { zh: ["zh-CN"], "zh-Hans": ["zh-CN"], "zh-SG": ["zh-CN"], default: ["en"] },
    ns: pageNamespaces,
    defaultNS: "common",
    resources: {},
    partialBundledLanguages: true,
    interpolation: { escapeValue: false }, // text goes in with textContent, never innerHTML
    detection: {
      order: ["querystring", "localStorage", "navigator"],
      lookupQuerystring: "lang",
      lookupLocalStorage: STORE_KEY,
      caches: ["localStorage"],
      convertDetectedLanguage: (l) => (l.toLowerCase().startsWith("zh") ? "zh-CN" : l),
    },
  });
  await loadAll(language(), pageNamespaces);
  await i18next.changeLanguage(language());
  document.documentElement.lang = language();
  applyI18n(document);
  return i18next;
}

export function language() {
  const l = i18next.resolvedLanguage || i18next.language || "en";
  return LANGUAGES.includes(l) ? l : l.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

export function t(key, options) {
  return i18next.t(key, options);
}

export function applyI18n(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n, { defaultValue: el.textContent });
  }
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split("=").map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key, { defaultValue: el.getAttribute(attr) || "" }));
    }
  }
}

export async function setLanguage(lng) {
  if (!LANGUAGES.includes(lng)) return;
  await loadAll(lng, pageNamespaces);
  await i18next.changeLanguage(lng);
  localStorage.setItem(STORE_KEY, lng);
  document.documentElement.lang = lng;
  applyI18n(document);
  window.dispatchEvent(new CustomEvent("cityops:language", { detail: lng }));
}

// Script-drawn parts redraw themselves when the language changes.
export function onLanguageChange(fn) {
  window.addEventListener("cityops:language", (e) => fn(e.detail));
}

// A button that switches between the two languages, labelled with the other one's own name.
export function languageSwitcher() {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "lang-switch";
  const label = () => {
    const other = language() === "zh-CN" ? "en" : "zh-CN";
    b.textContent = other === "zh-CN" ? "中文" : "English";
    b.lang = other;
    b.dataset.lang = other;
  };
  label();
  b.addEventListener("click", () => setLanguage(b.dataset.lang).then(label));
  return b;
}

export function fmtNumber(n, options) {
  return new Intl.NumberFormat(language(), options).format(n);
}

export function fmtDateTime(d, options = { dateStyle: "medium", timeStyle: "short" }) {
  const date = d instanceof Date ? d : new Date(d);
  return new Intl.DateTimeFormat(language(), options).format(date);
}

export function fmtTime(d, options = { timeStyle: "medium" }) {
  return fmtDateTime(d, options);
}

// The person-readable text of an API error body: `{"error": "<English message>", "code":
// "<stable code>", "detail": ...}`; the code's translation when there is one, else the message.
export function errorText(body) {
  const message = (body && (typeof body.error === "string" ? body.error : body.message)) || "";
  const code = body && body.code;
  return code ? t(`errors:${code}`, { defaultValue: message }) : message;
}
