// Community analytics on the big screen: the garbage-sorting communities furthest below the
// mark (a panel), and the homes of residents of 60+ outside the 15-minute elderly-care circle
// (a map layer). Asked of the API now and then rather than carried in the live feed: both
// change by the day, not by the second.
import { api, key } from "/static/common.js";
import { t, fmtNumber, useNamespaces, onLanguageChange } from "/static/i18n.js";

const RANKING_MS = 60000;
const GAPS_MS = 600000;
const WORST = 6;
const GAP_COLOR = "#c084fc";

// What the panel and the layer last showed; the tests read it.
const state = { worst: [], towns: [], gaps: 0, polls: 0 };
window.cityopsCommunity = state;

const pct = (x) => (x === null || x === undefined ? "–"
  : fmtNumber(x, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }));

// A community's name in the page's language, from the screen's map (which has them all); the
// ranking names each community by its area code (`area`).
function nameOf(c) {
  const view = window.cityops && window.cityops.view;
  return view && view.features && view.features.has(c.area) ? view.name(c.area) : c.name;
}

function row(c) {
  const r = document.createElement("div");
  r.className = `bar sorting${c.below_target ? " below" : ""}`;
  r.title = t("community:row", { name: nameOf(c), accuracy: pct(c.accuracy), count: c.inspections }) +
    (c.trend !== null ? t("community:trend", { points: `${c.trend >= 0 ? "+" : ""}${fmtNumber(100 * c.trend, { minimumFractionDigits: 1, maximumFractionDigits: 1 })}` }) : "");
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = nameOf(c);
  const track = document.createElement("span");
  track.className = "track";
  const fill = document.createElement("span");
  fill.className = "fill";
  // 80-100 % spread over the bar: below 80 % is the same empty bar, a lot worse than the mark
  fill.style.width = `${Math.max(0, Math.min(1, (c.accuracy - 0.8) / 0.2)) * 100}%`;
  track.append(fill);
  const n = document.createElement("span");
  n.className = "n";
  n.textContent = pct(c.accuracy);
  r.append(label, track, n);
  return r;
}

let last = null; // the ranking last drawn, drawn again when the language changes

async function loadRanking(panel) {
  try {
    const doc = await api("/api/v1/sorting/ranking?period=week");
    last = doc;
    drawRanking(panel, doc);
  } catch (e) {
    if ([401, 403].includes(e.status)) panel.hidden = true; // a key that may not read it
  }
  state.polls += 1;
}

function drawRanking(panel, doc) {
  state.worst = doc.communities.filter((c) => c.accuracy !== null)
    .sort((a, b) => a.accuracy - b.accuracy).slice(0, WORST);
  state.towns = doc.towns;
  const below = doc.towns.filter((x) => x.below_target).length;
  panel.querySelector("small").textContent = t("community:below",
    { below, count: doc.towns.filter((x) => x.accuracy !== null).length });
  const list = panel.querySelector(".bars");
  if (state.worst.length) list.replaceChildren(...state.worst.map(row));
  else {
    const none = document.createElement("p");
    none.className = "quiet";
    none.textContent = t("community:none");
    list.replaceChildren(none);
  }
  panel.hidden = false;
}

async function loadGaps(view) {
  try {
    const layer = await api("/api/v1/care/gaps.geojson");
    state.gaps = layer.features.length;
    view.setGeoJSON("care-gaps", layer.features);
  } catch (e) {
    state.gaps = 0;
  }
}

function whenMapReady(then) {
  const view = window.cityops && window.cityops.view;
  if (view && view.map && view.map.getSource && view.map.getSource("incidents")) then(view);
  else setTimeout(() => whenMapReady(then), 500);
}

const panel = document.getElementById("sorting");
async function start() {
  if (!key()) { setTimeout(start, 500); return; }
  await useNamespaces(["community"]);
  if (panel) {
    onLanguageChange(() => { if (last) drawRanking(panel, last); });
    loadRanking(panel);
    setInterval(() => loadRanking(panel), RANKING_MS);
  }
  whenMapReady((view) => {
    // The map knows the communities' names in the page's language; a ranking drawn before it
    // was ready fell back to the names the ranking carries, so it is drawn again now.
    if (panel && last) drawRanking(panel, last);
    // under the incidents, so a case at a gap stays clickable and in sight
    view.addGeoJSON("care-gaps", [{ id: "care-gaps", type: "circle", paint: {
      "circle-radius": ["interpolate", ["linear"], ["zoom"], 9, 1.5, 14, 5],
      "circle-color": GAP_COLOR, "circle-opacity": 0.55 } }]);
    if (view.map.getLayer("alarms")) view.map.moveLayer("care-gaps", "alarms");
    loadGaps(view);
    setInterval(() => loadGaps(view), GAPS_MS);
  });
}
start();
