// The big screen's replay: a past window played back from GET /api/v1/screen/replay.
//
// It draws on layers of its own and hides the live ones while it runs, so the live feed keeps
// filling the page's world underneath and "back to live" is only a matter of showing them
// again: nothing of the live path changes. The window is asked for in chunks of frames as the
// replay runs (a step that suits the speed), and positions are interpolated between frames
// so the dots glide instead of jumping at x3600.
import { api, el, fmt, STATUS_LABEL, STATUS_ORDER, STAFF_COLORS } from "/static/common.js";
// `say`, not `t`: this module names a time `t` throughout.
import { t as say, onLanguageChange } from "/static/i18n.js";
import { PointsLayer } from "/static/mapview.js";

const SPEEDS = [1, 10, 60, 600, 3600];
// Seconds between frames at each speed: at most a few frames per second of play.
const STEP_AT = { 1: 1, 10: 5, 60: 15, 600: 120, 3600: 600 };
const CHUNK_FRAMES = 240;
const CHUNK_MAX_S = 12 * 3600; // the server answers 24 h at most; half loads quicker
const OPEN = new Set(["collected", "registered", "dispatched", "accepted", "handled", "verified"]);
const kpiName = (kpi) => say(`screen:kpi.${kpi}`, { defaultValue: kpi });
// Text the replay writes once carries its key, so a change of language relabels it.
const said = (key) => ({ "data-i18n": key, text: say(key) });

// The offset (ms) of a time zone from UTC at an instant: the pickers read and write the
// city's wall time, whatever the browser's own zone is.
function zoneOffset(ms, tz) {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone: tz, hourCycle: "h23", year: "numeric",
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
    .formatToParts(new Date(ms));
  const g = (k) => Number(parts.find((p) => p.type === k).value);
  return Date.UTC(g("year"), g("month") - 1, g("day"), g("hour"), g("minute"), g("second"))
    - Math.floor(ms / 1000) * 1000;
}

const toPicker = (t, tz) => new Date(t * 1000 + zoneOffset(t * 1000, tz)).toISOString().slice(0, 16);

function fromPicker(value, tz) {
  const wall = Date.parse(`${value}:00Z`);
  if (Number.isNaN(wall)) return null;
  const first = wall - zoneOffset(wall, tz);
  return (wall - zoneOffset(first, tz)) / 1000;
}

export function replayTime(t, tz) {
  // sv-SE writes 2026-11-22 10:30:00: the date matters, a replay is of another day.
  return new Date(t * 1000).toLocaleString("sv-SE", { timeZone: tz || undefined, hour12: false });
}

export class Replay {
  // `live`: what the replay hides and shows again ({ points: [layers], geojson: [layer ids] }).
  constructor({ view, world, live, vehicleColor }) {
    this.view = view;
    this.world = world;
    this.live = live;
    this.vehicleColor = vehicleColor;
    this.active = false;
    this.playing = false;
    this.speed = 60;
    this.from = 0;
    this.to = 0;
    this.t = 0;
    this.chunks = [];
    this.pending = new Map(); // chunk start -> promise
    this.frames = CHUNK_FRAMES; // fewer when a big city's movers pass the server's bound
    this.shown = null; // what is drawn now: the tests compare it with the API
    this.layersReady = false;
    this.build();
  }

  build() {
    const open = el("button", { id: "replay-open", class: "replay-open", type: "button",
      ...said("replay:button"), title: say("replay:openTitle"), "data-i18n-attr": "title=replay:openTitle",
      onclick: () => this.open() });
    const clock = document.getElementById("clock");
    clock.before(open);
    clock.after(el("span", { id: "replay-clock", class: "replay-clock", hidden: true },
      el("b", { class: "badge", ...said("replay:badge") }), el("span", { id: "replay-time" })));
    const speeds = el("div", { class: "speeds", role: "group", "aria-label": say("replay:speed"),
      "data-i18n-attr": "aria-label=replay:speed" },
      ...SPEEDS.map((s) => el("button", { type: "button", "data-speed": s, text: `x${s}`,
        onclick: () => this.setSpeed(s) })));
    this.bar = el("div", { id: "replay", class: "replay-bar", hidden: true },
      el("label", {}, el("span", said("replay:from")), " ", el("input", { type: "datetime-local", id: "replay-from" })),
      el("label", {}, el("span", said("replay:to")), " ", el("input", { type: "datetime-local", id: "replay-to" })),
      el("button", { type: "button", id: "replay-load", ...said("replay:load"), onclick: () => this.load() }),
      el("button", { type: "button", id: "replay-play", class: "play", text: "▶",
        title: say("replay:play"), "data-i18n-attr": "title=replay:play", onclick: () => this.toggle() }),
      el("input", { type: "range", id: "replay-slider", min: 0, max: 3600, step: 1, value: 0,
        "aria-label": say("replay:time"), "data-i18n-attr": "aria-label=replay:time",
        oninput: (e) => this.seek(this.from + Number(e.target.value)) }),
      speeds,
      el("span", { id: "replay-status", class: "status" }),
      el("button", { type: "button", id: "replay-live", class: "live", ...said("replay:live"),
        onclick: () => this.close() }));
    this.panel = el("section", { id: "replay-panel", class: "replay-panel", hidden: true },
      el("h3", said("replay:asItWas")),
      el("div", { id: "replay-figures", class: "figures" }),
      el("div", { id: "replay-states", class: "states" }),
      el("div", { id: "replay-vital", class: "kpis" }));
    const main = document.querySelector("main");
    main.append(this.bar, this.panel);
    this.setSpeed(this.speed);
    onLanguageChange(() => { if (this.active && this.shown) this.draw(); });
  }

  ensureLayers() {
    if (this.layersReady) return;
    this.staff = new PointsLayer("replay-staff", { size: 12 });
    this.vehicles = new PointsLayer("replay-vehicles", { size: 10, square: true });
    this.view.addPoints(this.vehicles);
    this.view.addPoints(this.staff);
    this.view.addGeoJSON("replay-alarms", [{ id: "replay-alarms", type: "circle", paint: {
      "circle-radius": 6, "circle-color": "rgba(255,77,79,0.25)", "circle-stroke-color": "#ff4d4f",
      "circle-stroke-width": 2 } }]);
    // Coloured as the live map colours cases: urgency inside, the state as it was around.
    this.view.addGeoJSON("replay-incidents", [{ id: "replay-incidents", type: "circle", paint: {
      "circle-radius": ["match", ["get", "urgency"], "urgent", 10, "high", 9, 8],
      "circle-color": ["match", ["get", "urgency"], "urgent", "#ff4d4f", "high", "#ff9f1a",
        "low", "#a0aec0", "#ffd43b"],
      "circle-stroke-width": 3,
      "circle-stroke-color": ["match", ["get", "status"], "collected", "#ffffff", "registered",
        "#9cc8ff", "dispatched", "#3d8bff", "accepted", "#22d3ee", "#34d399"] } }]);
    this.layersReady = true;
  }

  showLive(on) {
    for (const layer of this.live.points) { layer.visible = on; layer.changed(); }
    for (const id of this.live.geojson) {
      if (this.view.map.getLayer(id)) this.view.map.setLayoutProperty(id, "visibility", on ? "visible" : "none");
    }
    this.staff.visible = !on;
    this.vehicles.visible = !on;
    for (const id of ["replay-incidents", "replay-alarms"]) {
      this.view.map.setLayoutProperty(id, "visibility", on ? "none" : "visible");
    }
    this.staff.changed();
    this.vehicles.changed();
  }

  // -- open, close ---------------------------------------------------------------------------

  open() {
    if (this.active) return;
    this.ensureLayers();
    this.active = true;
    document.body.classList.add("replaying");
    this.bar.hidden = false;
    this.panel.hidden = false;
    document.getElementById("replay-clock").hidden = false;
    const tz = this.world.tz;
    const now = Math.floor(Date.now() / 60000) * 60;
    document.getElementById("replay-from").value = toPicker(now - 3600, tz);
    document.getElementById("replay-to").value = toPicker(now, tz);
    this.showLive(false);
    this.load();
  }

  close() {
    this.pause();
    this.active = false;
    this.chunks = [];
    this.pending.clear();
    this.shown = null;
    document.body.classList.remove("replaying");
    this.bar.hidden = true;
    this.panel.hidden = true;
    document.getElementById("replay-clock").hidden = true;
    this.showLive(true);
  }

  // A window from the pickers; the frames are asked for as they are needed.
  load() {
    const tz = this.world.tz;
    const from = fromPicker(document.getElementById("replay-from").value, tz);
    const to = fromPicker(document.getElementById("replay-to").value, tz);
    if (from === null || to === null) return this.status(say("replay:chooseWindow"), "bad");
    if (to <= from) return this.status(say("replay:endAfterStart"), "bad");
    this.start(from, to);
  }

  start(from, to) {
    this.pause();
    this.from = from;
    this.to = to;
    this.chunks = [];
    this.pending.clear();
    const slider = document.getElementById("replay-slider");
    slider.max = String(to - from);
    return this.seek(from);
  }

  // -- playing -------------------------------------------------------------------------------

  setSpeed(s) {
    this.speed = s;
    for (const b of this.bar.querySelectorAll(".speeds button")) {
      b.classList.toggle("on", Number(b.dataset.speed) === s);
    }
  }

  toggle() { if (this.playing) this.pause(); else this.play(); }

  play() {
    if (!this.active) return;
    if (this.t >= this.to - 1) this.t = this.from;
    this.playing = true;
    document.getElementById("replay-play").textContent = "❚❚";
    let last = performance.now();
    const frame = (now) => {
      if (!this.playing) return;
      const dt = (now - last) / 1000;
      last = now;
      const next = Math.min(this.to, this.t + dt * this.speed);
      // Waiting for the frames of what comes next: the replayed time stands still meanwhile.
      if (this.chunkAt(next) || next >= this.to) {
        this.t = next;
        this.draw();
      } else {
        this.fetch(next);
      }
      this.prefetch();
      if (this.t >= this.to) { this.pause(); return; }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  pause() {
    this.playing = false;
    const b = document.getElementById("replay-play");
    if (b) b.textContent = "▶";
  }

  async seek(t) {
    this.t = Math.max(this.from, Math.min(this.to, t));
    if (!this.chunkAt(this.t)) await this.fetch(this.t);
    this.draw();
  }

  // -- frames --------------------------------------------------------------------------------

  chunkAt(t) {
    return this.chunks.find((c) => t >= c.start && t < c.end) ||
      (t >= this.to ? this.chunks.find((c) => c.end >= this.to && c.start < this.to) : null);
  }

  fetch(t) {
    const step = STEP_AT[this.speed] || 15;
    const start = Math.max(this.from, this.from + Math.floor((t - this.from) / step) * step);
    const end = Math.min(this.to, start + Math.min(step * this.frames, CHUNK_MAX_S));
    if (end <= start) return Promise.resolve();
    const key = `${start}:${step}`;
    if (this.pending.has(key)) return this.pending.get(key);
    this.status(say("replay:loading"));
    const asked = api(`/api/v1/screen/replay?from=${start}&to=${end}&step=${step}`)
      .then((body) => {
        body.end = body.start + body.step * body.steps;
        body.byId = null;
        this.chunks.push(body);
        // A handful of chunks is plenty: the oldest go.
        if (this.chunks.length > 6) this.chunks.shift();
        this.status("");
      })
      .catch((e) => {
        this.pending.delete(key);
        // Too many values for one answer (a city of thousands of movers): fewer frames.
        if (e.status === 400 && this.frames > 10 && /values; at most/.test(e.message)) {
          this.frames = Math.max(10, Math.floor(this.frames / 2));
          return this.fetch(t);
        }
        this.pause();
        this.status(e.readable || e.message || say("replay:failed"), "bad");
        return undefined;
      })
      .finally(() => { if (this.pending.get(key) === asked) this.pending.delete(key); });
    this.pending.set(key, asked);
    return asked;
  }

  prefetch() {
    const c = this.chunkAt(this.t);
    if (c && c.end < this.to && this.t > c.end - (c.end - c.start) / 3 && !this.chunkAt(c.end)) this.fetch(c.end);
  }

  status(text, kind = "") {
    const s = document.getElementById("replay-status");
    s.textContent = text;
    s.className = `status ${kind}`;
  }

  // -- drawing -------------------------------------------------------------------------------

  draw() {
    const c = this.chunkAt(this.t);
    const tz = this.world.tz;
    document.getElementById("replay-time").textContent = replayTime(this.t, tz);
    document.getElementById("replay-slider").value = String(Math.round(this.t - this.from));
    if (!c) return;
    const x = Math.min(c.steps - 1, Math.max(0, (this.t - c.start) / c.step));
    const k = Math.floor(x);
    const f = x - k;
    const staff = this.movers(this.staff, c.staff, k, f, () => STAFF_COLORS.available, c.q);
    const vehicles = this.movers(this.vehicles, c.vehicles, k, f,
      (m) => this.vehicleColor(c.vehicles.group[m]), c.q);
    const open = [];
    const byState = {};
    for (const inc of c.incidents) {
      const status = statusAt(inc, this.t);
      if (!OPEN.has(status)) continue;
      byState[status] = (byState[status] || 0) + 1;
      if (inc.lat !== null) open.push([inc, status]);
    }
    this.view.setGeoJSON("replay-incidents", open.map(([i, status]) => ({ type: "Feature", id: i.id,
      geometry: { type: "Point", coordinates: [i.lon, i.lat] },
      properties: { id: i.id, urgency: i.urgency, status } })));
    // Devices in alarm: raised at or before t, not yet cleared.
    const alarms = c.alerts.filter((a) => a.device && a.lat !== null && a.first_seen <= this.t &&
      (a.cleared_at === null || this.t < a.cleared_at));
    this.view.setGeoJSON("replay-alarms", alarms.map((a) => ({ type: "Feature", id: a.id,
      geometry: { type: "Point", coordinates: [a.lon, a.lat] }, properties: { id: a.id } })));
    const vital = c.kpi.map((v) => ({ id: v.id, kpi: v.kpi, area: v.area, value: v.values[k] }));
    this.shown = { t: this.t, frame: k, chunkStart: c.start, step: c.step, staff, vehicles,
      incidents: Object.values(byState).reduce((a, b) => a + b, 0), drawnIncidents: open.length,
      alarms: alarms.length, vital };
    this.drawPanel(byState, vital);
  }

  // Each mover at frame k, moved a fraction f towards frame k + 1 when both are known;
  // answers how many are drawn.
  movers(layer, m, k, f, color, q) {
    layer.pos.fill(NaN);
    let drawn = 0;
    for (let r = 0; r < m.i.length; r++) {
      const i = m.i[r];
      const la = m.lat[r][k], lo = m.lon[r][k];
      if (la === null) { layer.set(i, null, null); continue; }
      const la2 = m.lat[r][k + 1], lo2 = m.lon[r][k + 1];
      const near = f > 0 && la2 !== null && la2 !== undefined;
      layer.set(i, (near ? lo + (lo2 - lo) * f : lo) / q, (near ? la + (la2 - la) * f : la) / q);
      layer.paint(i, color(r));
      drawn += 1;
    }
    layer.changed();
    return drawn;
  }

  drawPanel(byState, vital) {
    const s = this.shown;
    document.getElementById("replay-figures").replaceChildren(
      figure(s.staff, say("replay:staff")), figure(s.vehicles, say("replay:vehicles")),
      figure(s.incidents, say("replay:openIncidents")), figure(s.alarms, say("replay:alarms")));
    document.getElementById("replay-states").replaceChildren(...STATUS_ORDER.filter((st) => OPEN.has(st))
      .map((st) => el("div", { class: `row ${st}` }, el("span", { text: STATUS_LABEL[st] }),
        el("b", { text: fmt.format(byState[st] || 0) }))));
    const box = document.getElementById("replay-vital");
    if (!vital.length) { box.replaceChildren(el("p", { class: "quiet", text: say("replay:noVital") })); return; }
    box.replaceChildren(...vital.slice(0, 8).map((v) =>
      el("div", { class: "row" }, el("span", { text: `${kpiName(v.kpi)}${v.area ? ` · ${this.view.name(v.area) || v.area}` : ""}` }),
        el("b", { text: v.value === null || v.value === undefined ? "–" : fmt.format(Math.round(v.value * 10) / 10) }))));
  }
}

function figure(n, label) {
  return el("div", {}, el("div", { class: "big", text: fmt.format(n) }), el("div", { class: "unit", text: label }));
}

// A case's status at t, from its changes (oldest first); null before it was reported.
export function statusAt(inc, t) {
  let status = null;
  for (const [at, s] of inc.changes) {
    if (at > t) break;
    status = s;
  }
  return status;
}
