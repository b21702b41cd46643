// Cameras in the console: the camera registry (a dialog listing each camera the key may see,
// what it reports now, its streams and newest snapshot) and the camera evidence of the case
// shown in the detail pane (the snapshot and the clip of the video analytics event behind each
// camera alert).
//
// Images come from this node only (GET /api/v1/camera-snapshots/..., fetched with the key and
// shown as blobs): the console may sit where the NVRs cannot be reached, and must not leak the
// key to them. Stream and clip links point at the city's video network, for staff on it.
import { api, el, showPhotos, key } from "/static/common.js";

const PAGE = 50;
// What was last shown; the tests read it.
const state = { cameras: [], next: null, evidence: {}, loads: 0 };
window.cityopsCameras = state;

function when(iso) {
  return iso ? new Date(iso).toLocaleString("en-GB", { month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit" }) : "";
}

function minutes(s) {
  return s == null ? "" : s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`;
}

function safeLink(url, text) {
  // Only the schemes a stream or clip has; anything else is shown as text, not followed.
  return /^(https?|rtsps?|rtmp|srt|webrtc):\/\//i.test(url)
    ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text })
    : el("span", { text: `${text}: ${url}` });
}

function cameraRow(c) {
  const now = c.last_event;
  const event = now && now.event !== "none"
    ? `${now.event.replaceAll("_", " ")}${now.dwell_s != null ? ` · ${minutes(now.dwell_s)}` : ""}`
    : "nothing";
  const shot = c.last_snapshot;
  return el("tr", { "data-id": c.id },
    el("td", {}, el("b", { text: c.name || c.id }), el("div", { class: "quiet", text: c.id })),
    el("td", { text: c.areas ? c.areas.village || c.areas.town || "" : "" }),
    el("td", {}, el("span", { text: event }),
      now ? el("div", { class: "quiet", text: when(now.ts) }) : null),
    el("td", {}, ...Object.entries(c.streams || {}).map(([name, url]) =>
      el("div", {}, safeLink(url, name)))),
    el("td", {}, shot
      ? el("div", {},
        el("img", { "data-src": shot.url, alt: `Snapshot: ${shot.event}`, class: "camera-shot" }),
        el("div", { class: "quiet" }, `${shot.event.replaceAll("_", " ")} · ${when(shot.taken_at)}`,
          shot.incident ? el("span", {}, " · ", el("a", {
            href: `/console#incident=${encodeURIComponent(shot.incident)}`, text: "case" })) : null))
      : el("span", { class: "quiet", text: "none yet" })));
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
      text: "No cameras in the area your key covers." })));
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
    el("div", {}, el("b", { text: e.event.replaceAll("_", " ") }),
      ` · ${e.label || ""} in ${e.zone === "*" ? "view" : e.zone || "view"} of ${e.camera} · ${when(e.seen_at)}`),
    e.snapshot_url
      ? el("img", { "data-src": e.snapshot_url, alt: "Snapshot of the event", class: "camera-shot" })
      : el("div", { class: "quiet", text: e.error
        ? `Snapshot not fetched yet (${e.attempts} attempts): ${e.error}`
        : "Snapshot being fetched…" }),
    e.clip_url ? el("div", {}, safeLink(e.clip_url, "Clip on the video network")) : null);
}

async function showEvidence(box, id) {
  try {
    const found = await api(`/api/v1/incidents/${encodeURIComponent(id)}/camera-evidence`);
    state.evidence[id] = found.items;
    if (!found.items.length || box.querySelector(`[data-camera-evidence="${CSS.escape(id)}"]`)) return;
    const block = el("section", { class: "camera-evidence", "data-camera-evidence": id },
      el("h3", { text: "Camera evidence" }), el("ul", {}, ...found.items.map(evidenceItem)));
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

setupRegistry();
setupEvidence();
