// Community analytics on the big screen: the garbage-sorting communities furthest below the
// mark (a panel), and the homes of residents of 60+ outside the 15-minute elderly-care circle
// (a map layer). Asked of the API now and then rather than carried in the live feed: both
// change by the day, not by the second.
import { api, key } from "/static/common.js";

const RANKING_MS = 60000;
const GAPS_MS = 600000;
const WORST = 6;
const GAP_COLOR = "#c084fc";

// What the panel and the layer last showed; the tests read it.
const state = { worst: [], towns: [], gaps: 0, polls: 0 };
window.cityopsCommunity = state;

const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)}%`);

function row(c) {
  const r = document.createElement("div");
  r.className = `bar sorting${c.below_target ? " below" : ""}`;
  r.title = `${c.name}: ${pct(c.accuracy)} over ${c.inspections} inspections` +
    (c.trend !== null ? `, ${c.trend >= 0 ? "+" : ""}${(100 * c.trend).toFixed(1)} points on the period before` : "");
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = c.name;
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

async function loadRanking(panel) {
  try {
    const doc = await api("/api/v1/sorting/ranking?period=week");
    state.worst = doc.communities.filter((c) => c.accuracy !== null)
      .sort((a, b) => a.accuracy - b.accuracy).slice(0, WORST);
    state.towns = doc.towns;
    const below = doc.towns.filter((t) => t.below_target).length;
    panel.querySelector("small").textContent =
      `week · ${below} of ${doc.towns.filter((t) => t.accuracy !== null).length} streets <90%`;
    const list = panel.querySelector(".bars");
    if (state.worst.length) list.replaceChildren(...state.worst.map(row));
    else list.innerHTML = '<p class="quiet">No inspections this week.</p>';
    panel.hidden = false;
  } catch (e) {
    if ([401, 403].includes(e.status)) panel.hidden = true; // a key that may not read it
  }
  state.polls += 1;
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
function start() {
  if (!key()) { setTimeout(start, 500); return; }
  if (panel) {
    loadRanking(panel);
    setInterval(() => loadRanking(panel), RANKING_MS);
  }
  whenMapReady((view) => {
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
