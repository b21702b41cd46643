// Every page's words in zh-CN and English, through i18next (vendored from npm, pinned).
//
// A page calls `await initI18n(["screen"])` once before it draws: the language is taken from
// `?lang=`, then the one the person chose before (localStorage), then the browser's; the
// namespaces' JSON files are fetched from /static/locales/<lng>/<ns>.json ("common" always).
// Static HTML is marked up, not scripted:
//   <h2 data-i18n="screen:vital.title">Vital signs</h2>       text (the English stays as-is
//                                                              until the translation loads)
//   <input data-i18n-attr="placeholder=citizen:services.hint"> attributes, `;`-separated
//   <title data-i18n="screen:title" data-arg-city="Pudong">    values for the text's
//                                                              {{city}} come from data-arg-*
// Script-made text uses `t("ns:key", {count, ...})`; numbers and times go through `fmtNumber` /
// `fmtDateTime` so they follow the language too. A module with a namespace of its own (a
// banner that several pages carry) asks for it with `await useNamespaces(["storm"])`, which
// also waits until the page's `initI18n` is done; `ready` is that wait alone. A name from the
// city pack (an area, a department, a category) is `{name, names: {"zh-CN": ...}}` on the
// wire: `localName(thing)` picks the one for the language shown. API errors stay English on the wire with a
// stable `code`; `errorText(body)` shows the code's translation ("errors" namespace), else the
// English message (the error body's shape is set in cityops/api/errors.py).
import i18next from "/static/vendor/i18next.mjs";
import LanguageDetector from "/static/vendor/i18next-browser-languagedetector.mjs";

export const LANGUAGES = ["zh-CN", "en"];
const STORE_KEY = "cityops.lang";
// One fetch per file however many modules ask for it at once.
const loading = new Map();

function fetchNamespace(lng, ns) {
  const key = `${lng}/${ns}`;
  if (!loading.has(key)) {
    loading.set(key, (async () => {
      const res = await fetch(`/static/locales/${lng}/${ns}.json`, { cache: "no-cache" });
      // A namespace a page names but nobody has translated yet is not fatal: keys fall back.
      if (!res.ok) return;
      i18next.addResourceBundle(lng, ns, await res.json(), true, true);
    })().catch(() => { loading.delete(key); }));
  }
  return loading.get(key);
}

let started;
export const ready = new Promise((ok) => { started = ok; });

async function loadAll(lng, namespaces) {
  const wanted = new Set([lng, "en"]);
  await Promise.all([...wanted].flatMap((l) => namespaces.map((ns) => fetchNamespace(l, ns))));
}

let pageNamespaces = ["common", "errors"];

export async function initI18n(namespaces = []) {
  pageNamespaces = [...new Set([...pageNamespaces, ...namespaces])];
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
      // Only a choice made with the switcher is remembered, not what the browser said once.
      caches: [],
      convertDetectedLanguage: (l) => {
        const low = l.toLowerCase();
        return low.startsWith("zh") ? "zh-CN" : low.startsWith("en") ? "en" : l;
      },
    },
  });
  await loadAll(language(), pageNamespaces);
  await i18next.changeLanguage(language());
  document.documentElement.lang = language();
  applyI18n(document);
  started(i18next);
  return i18next;
}

export async function useNamespaces(namespaces) {
  await ready;
  pageNamespaces = [...new Set([...pageNamespaces, ...namespaces])];
  await loadAll(language(), namespaces);
  // Only these namespaces' marked-up text: the rest may have been rewritten by its script
  // since (the connection state, say), which relabelling it would undo.
  applyI18n(document, namespaces);
}

export function language() {
  const l = i18next.resolvedLanguage || i18next.language || "en";
  return LANGUAGES.includes(l) ? l : l.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

export function t(key, options) {
  return i18next.t(key, options);
}

// The city's own name and its translations, from the page's <meta name="cityops-city">.
let city = null;
export function cityName() {
  if (city === null) {
    const meta = document.querySelector('meta[name="cityops-city"]');
    try { city = meta ? JSON.parse(meta.content) : {}; } catch { city = {}; }
  }
  return localName(city);
}

// The text's {{values}}: {{city}} is the city's name; the rest come from the element's
// data-arg-* attributes (data-arg-count -> count).
function argsOf(el) {
  const out = { city: cityName() };
  for (const [k, v] of Object.entries(el.dataset)) {
    if (k.startsWith("arg") && k.length > 3) out[k[3].toLowerCase() + k.slice(4)] = v;
  }
  return out;
}

const originals = new WeakMap(); // element -> its attributes' English, as the HTML had them

const inNamespaces = (key, only) => !only || only.some((ns) => key.startsWith(`${ns}:`));

export function applyI18n(root = document, only = null) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    if (!inNamespaces(el.dataset.i18n, only)) continue;
    // The English in the HTML is the fallback: kept on first use, since textContent changes.
    if (el.dataset.i18nEn === undefined) el.dataset.i18nEn = el.textContent;
    el.textContent = t(el.dataset.i18n, { ...argsOf(el), defaultValue: el.dataset.i18nEn });
  }
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split("=").map((s) => s.trim());
      if (!attr || !key || !inNamespaces(key, only)) continue;
      const first = originals.get(el) || {};
      if (!(attr in first)) { first[attr] = el.getAttribute(attr) || ""; originals.set(el, first); }
      el.setAttribute(attr, t(key, { ...argsOf(el), defaultValue: first[attr] }));
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

// The name of a thing from the city pack in the language shown: `names` holds the pack's
// translations by language ({"zh-CN": "陆家嘴街道"}), `name` its own.
export function localName(thing) {
  if (!thing) return "";
  const names = thing.names || {};
  const lng = language();
  return names[lng] || (lng.startsWith("zh") ? names.zh || names["zh-Hans"] : names.en) || thing.name || "";
}

// MapLibre's own words (its controls' titles, the map's and markers' labels) for a map's
// `locale` option; before the page's language is known, none: MapLibre's English stands.
const MAP_WORDS = ["AttributionControl.ToggleAttribution", "AttributionControl.MapFeedback",
  "FullscreenControl.Enter", "FullscreenControl.Exit", "GeolocateControl.FindMyLocation",
  "GeolocateControl.LocationNotAvailable", "LogoControl.Title", "Map.Title", "Marker.Title",
  "NavigationControl.ResetBearing", "NavigationControl.ZoomIn", "NavigationControl.ZoomOut",
  "Popup.Close", "ScaleControl.Meters", "ScaleControl.Kilometers",
  "CooperativeGesturesHandler.WindowsHelpText", "CooperativeGesturesHandler.MacHelpText",
  "CooperativeGesturesHandler.MobileHelpText"];

export function mapLocale() {
  if (!i18next.isInitialized) return {};
  return Object.fromEntries(MAP_WORDS.map((k) => [k, t(`common:maplibre.${k}`)]));
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
  // A translation may quote the English message where it names what is at fault (a field).
  return code ? t(`errors:${code}`, { message, defaultValue: message }) : message;
}
