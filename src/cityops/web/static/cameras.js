// Cameras in the console: the camera registry (a dialog listing each camera the key may see,
// what it reports now, its streams and newest snapshot) and the camera evidence of the case
// shown in the detail pane (the snapshot and the clip of the video analytics event behind each
// camera alert).
//
// Images come from this node only (GET /api/v1/camera-snapshots/..., fetched with the key and
// shown as blobs): the console may sit where the NVRs cannot be reached, and must not leak the
// key to them. Stream and clip links point at the city's video network, for staff on it.
import { api, el, showPhotos, key, dateTime, span } from "/static/common.js";
import { t, useNamespaces } from "/static/i18n.js";

const PAGE = 50;
// What was last shown; the tests read it.
const state = { cameras: [], next: null, evidence: {}, loads: 0 };
window.cityopsCameras = state;

function when(iso) {
  return iso ? dateTime(Date.parse(iso) / 1000) : "";
}

function minutes(s) {
  return s == null ? "" : span(s < 90 ? s : Math.round(s / 60) * 60);
}

// What a camera's analytics saw, in words ("stall", "crowd" ...).
const eventName = (e) => t(`cameras:event.${e}`, { defaultValue: String(e).replaceAll("_", " ") });

function safeLink(url, text) {
  // Only the schemes a stream or clip has; anything else is shown as text, not followed.
  return /^(https?|rtsps?|rtmp|srt|webrtc):\/\//i.test(url)
    ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text })
    : el("span", { text: `${text}: ${url}`, translate: "no" });
}

function cameraRow(c) {
  const now = c.last_event;
  const event = now && now.event !== "none"
    ? `${eventName(now.event)}${now.dwell_s != null ? ` · ${minutes(now.dwell_s)}` : ""}`
    : t("cameras:nothing");
  const shot = c.last_snapshot;
  return el("tr", { "data-id": c.id },
    el("td", {}, el("b", { text: c.name || c.id, translate: "no" }), el("div", { class: "quiet", text: c.id })),
    el("td", { text: c.areas ? areaName(c.areas.village || c.areas.town || "") : "" }),
    el("td", {}, el("span", { text: event }),
      now ? el("div", { class: "quiet", text: when(now.ts) }) : null),
    el("td", {}, ...Object.entries(c.streams || {}).map(([name, url]) =>
      el("div", {}, safeLink(url, name)))),
    el("td", {}, shot
      ? el("div", {},
        el("img", { "data-src": shot.url, alt: t("cameras:snapshotOf", { event: eventName(shot.event) }), class: "camera-shot" }),
        el("div", { class: "quiet" }, `${eventName(shot.event)} · ${when(shot.taken_at)}`,
          shot.incident ? el("span", {}, " · ", el("a", {
            href: `/console#incident=${encodeURIComponent(shot.incident)}`, text: t("cameras:case") })) : null))
      : el("span", { class: "quiet", text: t("cameras:noneYet") })));
}

async function loadCameras(table, more) {
  const cursor = more && state.next ? `&cursor=${encodeURIComponent(state.next)}` : "";
  const page = await api(`/api/v1/cameras?limit=${PAGE}${cursor}`);
  state.cameras = more ? state.cameras.concat(page.items) : page.items;
  state.next = page.next;
  state.loads += 1;
  const body = table.querySelector("tbody");
  const rows = page.items.map(cameraRow);
  if (more) body.append(...rows); else body.replaceChildren(...rows);
  if (!state.cameras.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "quiet",
      text: t("cameras:noCameras") })));
  }
  await showPhotos(body);
}

function setupRegistry() {
  const dialog = document.getElementById("cameras-dialog");
  const button = document.getElementById("cameras-button");
  if (!dialog || !button) return;
  const table = dialog.querySelector("table");
  const more = dialog.querySelector("[data-more]");
  const refusal = dialog.querySelector(".refusal");
  const run = async (again) => {
    refusal.hidden = true;
    try {
      await loadCameras(table, again);
    } catch (e) {
      refusal.textContent = e.readable || String(e);
      refusal.hidden = false;
    }
    more.hidden = !state.next;
  };
  button.addEventListener("click", () => { dialog.showModal(); run(false); });
  more.addEventListener("click", () => run(true));
}

// -- the case's camera evidence ---------------------------------------------------------------

function evidenceItem(e) {
  return el("li", {},
    el("div", {}, el("b", { text: eventName(e.event) }),
      ` · ${t("cameras:seen", { label: e.label || "", zone: e.zone === "*" || !e.zone ? t("cameras:view") : e.zone, camera: e.camera })} · ${when(e.seen_at)}`),
    e.snapshot_url
      ? el("img", { "data-src": e.snapshot_url, alt: t("cameras:eventShot"), class: "camera-shot" })
      : el("div", { class: "quiet", text: e.error
        ? t("cameras:notFetched", { count: e.attempts, error: e.error })
        : t("cameras:fetching") }),
    e.clip_url ? el("div", {}, safeLink(e.clip_url, t("cameras:clip"))) : null);
}

async function showEvidence(box, id) {
  try {
    const found = await api(`/api/v1/incidents/${encodeURIComponent(id)}/camera-evidence`);
    state.evidence[id] = found.items;
    if (!found.items.length || box.querySelector(`[data-camera-evidence="${CSS.escape(id)}"]`)) return;
    const block = el("section", { class: "camera-evidence", "data-camera-evidence": id },
      el("h3", { text: t("cameras:evidence") }), el("ul", {}, ...found.items.map(evidenceItem)));
    box.append(block);
    await showPhotos(block);
  } catch {
    // A case without camera evidence, or a key that may not read it: the case stands as is.
  }
}

function setupEvidence() {
  const box = document.getElementById("detail");
  if (!box) return;
  // The console redraws the detail pane whenever its case changes; each redraw gets the
  // evidence again (a snapshot fetched since shows up with the next change).
  new MutationObserver(() => {
    const id = new URLSearchParams(location.hash.slice(1)).get("incident");
    if (id && key() && !box.querySelector("[data-camera-evidence]")) showEvidence(box, id);
  }).observe(box, { childList: true });
}

// The area's name in the page's language, from the console's map.
function areaName(code) {
  const view = window.cityops && window.cityops.view;
  return view && view.features && view.features.has(code) ? view.name(code) : code;
}

useNamespaces(["cameras"]).then(() => {
  setupRegistry();
  setupEvidence();
});
