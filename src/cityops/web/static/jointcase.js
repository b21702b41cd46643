// The big screen's joint-disposal panel: the seed's case (an overturned truck on fire by a
// village, cityops.sim.jointcase) as the demo stages it, followed unit by unit, with discovery
// to done as it happened against the same case dispatched one department after another.
//
// Everything comes from the incidents API: the case, and the comparison the server sums from its
// timeline (same units, same travel and work times, each next unit called only once the one
// before is on site and has phoned it, `relay_s` in the staged report).
import * as i18n from "/static/i18n.js";
import { api, el, key } from "/static/common.js";

const CATEGORY = "event.emergency.vehicle_fire";
const MARK = "joint_disposal";
const DEPARTMENTS = ["police", "fire", "ambulance", "city_management"];
const FIND_MS = 15000; // looking for a staged case
const FOLLOW_MS = 5000; // following one until it is closed

// What the panel last showed; the tests read it.
const state = { id: null, status: null, joint_s: null, sequential_s: null, legs: [], polls: 0 };
window.cityopsJointCase = state;

function tr(k, fallback, options = {}) {
  // Before the page's i18n is up (or without the namespace) i18next answers the key itself.
  const out = i18n.t(`loop:${k}`, { defaultValue: fallback, ...options });
  return typeof out === "string" && out && out !== k && out !== `loop:${k}` ? out : fallback;
}

const minutes = (s) => tr("minutes", `${Math.round(s / 60)} min`, { count: Math.round(s / 60) });

// The sum is the server's (GET /api/v1/incidents/{id}/joint, cityops.domain.incidents.joint),
// with the relay time the staged report names and the seed's order of the departments.
async function comparison(detail) {
  const relay = detail.reports_filed.map((r) => r.data && r.data.relay_s).find((x) => x) || 600;
  const q = new URLSearchParams({ relay_s: String(relay), order: DEPARTMENTS.join(",") });
  return api(`/api/v1/incidents/${encodeURIComponent(detail.id)}/joint?${q}`);
}

async function staged() {
  const page = await api(`/api/v1/incidents?category=${encodeURIComponent(CATEGORY)}&limit=5`);
  for (const item of page.items) {
    const detail = await api(`/api/v1/incidents/${encodeURIComponent(item.id)}`);
    if (detail.reports_filed.some((r) => r.data && r.data.staged === MARK)) return detail;
  }
  return null;
}

function legState(leg) {
  if (leg.status === "done") return ["done", tr("state.done", "done")];
  if (leg.progress === "on_site") return ["on_site", tr("state.on_site", "on site")];
  if (leg.progress === "en_route") return ["en_route", tr("state.en_route", "en route")];
  if (leg.status === "accepted") return ["accepted", tr("state.accepted", "accepted")];
  return ["dispatched", tr("state.dispatched", "dispatched")];
}

let shown = null; // the case and comparison drawn last, redrawn when the language changes

function render(box, detail, result) {
  shown = [detail, result];
  const head = el("h2", {}, el("span", { text: tr("title", "Joint disposal") }), " ",
    el("small", { text: tr("note", "seed case · simulated time") }));
  // The panel is the demo's: a city whose screen has no staged case never shows it.
  box.hidden = !detail;
  if (!detail) {
    box.replaceChildren(head, el("p", { class: "quiet", text: tr("waiting", "Waiting for the staged case…") }));
    return;
  }
  const rows = result.legs.map((l) => {
    const [cls, text] = legState(l);
    const took = l.on_site !== null ? minutes(l.on_site - detail.reported_at) : "–";
    return el("div", { class: `row ${cls}`, "data-dept": l.department },
      el("span", { class: "dept", text: tr(`dept.${l.department}`, l.department.replace(/_/g, " ")) }),
      el("span", { class: "st", text }),
      el("span", { class: "t", text: took, title: tr("onSiteAfter", "on site after discovery") }));
  });
  const last = Math.max(detail.reported_at, ...detail.timeline.map((e) => e.at));
  const figures = result.joint_s === null
    ? [el("div", { class: "fig" }, el("span", { text: tr("soFar", "In progress, so far") }),
      el("b", { class: "joint", text: minutes(last - detail.reported_at) }))]
    : [el("div", { class: "fig" }, el("span", { text: tr("joint", "Discovery to done, all at once") }),
      el("b", { class: "joint", text: minutes(result.joint_s) })),
    el("div", { class: "fig" }, el("span", { text: tr("sequential", "One department after another") }),
      el("b", { class: "sequential", text: minutes(result.sequential_s) })),
    el("div", { class: "fig saved" }, el("span", { text: tr("saved", "Saved") }),
      el("b", { text: minutes(result.saved_s) }))];
  box.replaceChildren(head, el("p", { class: "case", text: tr("case", "Overturned truck on fire by a village") }),
    el("div", { class: "legs" }, ...rows), el("div", { class: "figures" }, ...figures));
  Object.assign(state, { id: detail.id, status: detail.status, joint_s: result.joint_s,
    sequential_s: result.sequential_s, legs: result.legs });
}

async function poll(box) {
  let wait = FIND_MS;
  if (key()) {
    try {
      const detail = state.id && state.status !== "closed"
        ? await api(`/api/v1/incidents/${encodeURIComponent(state.id)}`) : await staged();
      if (detail) render(box, detail, await comparison(detail));
      else if (!state.id) render(box, null);
      if (detail && detail.status !== "closed") wait = FOLLOW_MS;
    } catch (e) {
      // A key that may not read cases, or a node without the desk: the panel stays away.
      if ([401, 403, 404, 503].includes(e.status)) box.hidden = true;
    }
    state.polls += 1;
  }
  setTimeout(() => poll(box), wait);
}

const box = document.getElementById("jointcase");
if (box) {
  render(box, null);
  poll(box);
  const redraw = () => (shown ? render(box, ...shown) : render(box, null));
  if (i18n.useNamespaces) i18n.useNamespaces(["loop"]).then(redraw);
  window.addEventListener("cityops:language", redraw);
}
