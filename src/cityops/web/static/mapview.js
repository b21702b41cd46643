// The city map: the node's own vector base map (streets, water, names; `cityops map build`)
// under the pack's area polygons, three levels with drill-down, and fast point layers for the
// live objects. A node without a base map draws the polygons alone, as before.
import * as maplibregl from "/static/vendor/maplibre-gl.mjs";
import { localName, onLanguageChange, mapLocale, ready as i18nReady, t } from "/static/i18n.js";

const STATE_FILL = { daily: "#14304f", special: "#5a4614", emergency: "#5c1a1f" };
const STATE_LINE = { daily: "#3d7cc9", special: "#f0b429", emergency: "#ff5c5c" };

export function mercator(lon, lat) {
  const x = (lon + 180) / 360;
  const s = Math.sin((lat * Math.PI) / 180);
  const y = 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI);
  return [x, y];
}

export function bboxOf(geometry) {
  let [w, s, e, n] = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === "number") {
      w = Math.min(w, c[0]); e = Math.max(e, c[0]); s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    } else c.forEach(walk);
  };
  walk(geometry.coordinates);
  return [[w, s], [e, n]];
}

// -- the base map ------------------------------------------------------------------------------

// Chinese, Japanese and Korean names are drawn from the browser's own fonts, so the node only
// makes glyphs for alphabetic scripts (cityops.maps.glyphs).
export const CJK_FONTS = "'Noto Sans CJK SC', 'Source Han Sans SC', 'WenQuanYi Micro Hei', " +
  "'PingFang SC', 'Microsoft YaHei', sans-serif";
export const BASE_ABOVE_AREAS = "base-water";
export const BASE_FIRST_LABEL = "base-labels-roads";
const PLACE_LABELS = ["base-labels-villages", "base-labels-towns"];

function pageLanguage() {
  const lang = document.documentElement.lang || navigator.language || "en";
  return lang.toLowerCase().startsWith("zh") ? "zh" : "en";
}

// The node's base-map style (`/map/style.json`), its URLs made absolute on this page's origin
// (MapLibre's workers need absolute URLs; the node gives relative ones so that any public
// name works); null when the node has no base map (404) or cannot be reached.
export async function baseStyle({ theme = "dark", lang = pageLanguage() } = {}) {
  let answer;
  try {
    answer = await fetch(`/map/style.json?theme=${theme}&lang=${lang}`);
  } catch {
    return null;
  }
  if (!answer.ok) return null;
  const style = await answer.json();
  const here = (u) => (u.startsWith("/") ? location.origin + u : u);
  style.glyphs = here(style.glyphs);
  style.sprite = here(style.sprite);
  for (const src of Object.values(style.sources)) if (src.tiles) src.tiles = src.tiles.map(here);
  return style;
}

// Place and street names in the page's language, now and whenever the person switches
// (i18n.js announces it with a "cityops:language" event on window).
export function followLanguage(map) {
  const apply = (lang) => {
    const key = lang.toLowerCase().startsWith("zh") ? "name_zh" : "name_en";
    for (const layer of map.getStyle().layers) {
      if (layer.id.startsWith("base-labels")) {
        map.setLayoutProperty(layer.id, "text-field", ["coalesce", ["get", key], ["get", "name"]]);
      }
    }
  };
  apply(pageLanguage());
  window.addEventListener("cityops:language", (e) => apply(String(e.detail)));
}

// The base map's data credit (OpenStreetMap's licence asks that maps made from it say so),
// in MapLibre's compact attribution button; a map from the pack alone credits nobody.
export function credit(map, base) {
  if (base.sources.base.attribution) map.addControl(new maplibregl.AttributionControl({ compact: true }));
}

// The map without a base map: a dark background, and raster tiles from a tile server the
// node names (CITYOPS_TILE_URL), if any.
export function fallbackStyle(tiles, background = "#070d18") {
  const style = { version: 8, sources: {}, layers: [
    { id: "bg", type: "background", paint: { "background-color": background } }] };
  if (tiles) {
    style.sources.tiles = { type: "raster", tiles: [tiles], tileSize: 256 };
    style.layers.push({ id: "tiles", type: "raster", source: "tiles",
      paint: { "raster-opacity": 0.35, "raster-saturation": -0.8 } });
  }
  return style;
}

// A WebGL program from a vertex and a fragment shader's source; a compile error is thrown with
// the driver's log (the point and bin layers share it).
export function glProgram(gl, vs, fs) {
  const shader = (type, src) => {
    const s = gl.createShader(type);
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
    return s;
  };
  const p = gl.createProgram();
  gl.attachShader(p, shader(gl.VERTEX_SHADER, vs));
  gl.attachShader(p, shader(gl.FRAGMENT_SHADER, fs));
  gl.linkProgram(p);
  return p;
}

// Many moving dots drawn by one WebGL draw call: positions live in a Float32Array indexed by
// the object's number on the server, so an update writes a few floats and uploads one buffer,
// instead of rebuilding a GeoJSON source (which stalls at tens of thousands of points).
export class PointsLayer {
  constructor(id, { size = 7, square = false, outline = [8, 14, 24] } = {}) {
    this.id = id;
    this.type = "custom";
    this.renderingMode = "2d";
    this.size = size;
    this.square = square;
    this.outline = outline;
    this.capacity = 0;
    this.count = 0;
    this.pos = new Float32Array(0);
    this.color = new Uint8Array(0);
    this.dirty = true;
    this.onRender = null; // told at every frame drawn, to time updates to the screen
    this.visible = true;
  }

  reserve(n) {
    if (n <= this.capacity) return;
    const cap = Math.max(n, this.capacity * 2, 64);
    const pos = new Float32Array(cap * 2).fill(NaN);
    pos.set(this.pos);
    const color = new Uint8Array(cap * 4);
    color.set(this.color);
    this.pos = pos;
    this.color = color;
    this.capacity = cap;
  }

  set(i, lon, lat) {
    if (i >= this.capacity) this.reserve(i + 1);
    if (i >= this.count) this.count = i + 1;
    if (lon === null || lat === null || lon === undefined) {
      this.pos[2 * i] = NaN;
      this.pos[2 * i + 1] = NaN;
    } else {
      const [x, y] = mercator(lon, lat);
      this.pos[2 * i] = x;
      this.pos[2 * i + 1] = y;
    }
  }

  // Integer positions of 1e-5 degree, as the live feed sends them: the hot path.
  setMany(index, lats, lons, q) {
    let top = 0;
    for (let k = 0; k < index.length; k++) if (index[k] > top) top = index[k];
    if (top >= this.capacity) this.reserve(top + 1);
    if (top >= this.count) this.count = top + 1;
    const pos = this.pos;
    const k180 = Math.PI / 180;
    const k4pi = 1 / (4 * Math.PI);
    for (let k = 0; k < index.length; k++) {
      const i = index[k];
      const s = Math.sin(lats[k] / q * k180);
      pos[2 * i] = (lons[k] / q + 180) / 360;
      pos[2 * i + 1] = 0.5 - Math.log((1 + s) / (1 - s)) * k4pi;
    }
  }

  hide(i) {
    if (i < this.capacity) { this.pos[2 * i] = NaN; this.pos[2 * i + 1] = NaN; }
  }

  paint(i, rgb, alpha = 255) {
    if (i >= this.capacity) this.reserve(i + 1);
    this.color.set([rgb[0], rgb[1], rgb[2], alpha], i * 4);
  }

  position(i) {
    if (i >= this.count || Number.isNaN(this.pos[2 * i])) return null;
    const x = this.pos[2 * i], y = this.pos[2 * i + 1];
    const lon = x * 360 - 180;
    const lat = (360 / Math.PI) * Math.atan(Math.exp((0.5 - y) * 2 * Math.PI)) - 90;
    return [lon, lat];
  }

  changed() {
    this.dirty = true;
    if (this.map) this.map.triggerRepaint();
  }

  onAdd(map, gl) {
    this.map = map;
    const vs = `#version 300 es
      uniform mat4 u_matrix; uniform float u_size;
      in vec2 a_pos; in vec4 a_color; out vec4 v_color;
      void main() {
        if (isnan(a_pos.x) || a_color.a == 0.0) { gl_Position = vec4(2.0, 2.0, 2.0, 1.0); return; }
        gl_Position = u_matrix * vec4(a_pos, 0.0, 1.0);
        gl_PointSize = u_size; v_color = a_color;
      }`;
    const fs = `#version 300 es
      precision mediump float; uniform float u_square; uniform vec3 u_outline;
      in vec4 v_color; out vec4 color;
      void main() {
        vec2 c = gl_PointCoord * 2.0 - 1.0;
        float d = u_square > 0.5 ? max(abs(c.x), abs(c.y)) : length(c);
        if (d > 1.0) discard;
        color = d > 0.7 ? vec4(u_outline, 1.0) : v_color;
      }`;
    const p = glProgram(gl, vs, fs);
    this.program = p;
    this.u = { matrix: gl.getUniformLocation(p, "u_matrix"), size: gl.getUniformLocation(p, "u_size"),
      square: gl.getUniformLocation(p, "u_square"), outline: gl.getUniformLocation(p, "u_outline") };
    this.a = { pos: gl.getAttribLocation(p, "a_pos"), color: gl.getAttribLocation(p, "a_color") };
    this.posBuffer = gl.createBuffer();
    this.colorBuffer = gl.createBuffer();
  }

  render(gl, args) {
    if (this.onRender) this.onRender();
    if (!this.visible || !this.count) return;
    gl.useProgram(this.program);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.posBuffer);
    if (this.dirty) gl.bufferData(gl.ARRAY_BUFFER, this.pos.subarray(0, this.count * 2), gl.DYNAMIC_DRAW);
    gl.enableVertexAttribArray(this.a.pos);
    gl.vertexAttribPointer(this.a.pos, 2, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.colorBuffer);
    if (this.dirty) gl.bufferData(gl.ARRAY_BUFFER, this.color.subarray(0, this.count * 4), gl.DYNAMIC_DRAW);
    gl.enableVertexAttribArray(this.a.color);
    gl.vertexAttribPointer(this.a.color, 4, gl.UNSIGNED_BYTE, true, 0, 0);
    this.dirty = false;
    const m = args.defaultProjectionData ? args.defaultProjectionData.mainMatrix : args.modelViewProjectionMatrix;
    gl.uniformMatrix4fv(this.u.matrix, false, m);
    const zoom = this.map.getZoom();
    const scale = Math.max(0.6, Math.min(1.8, 0.6 + (zoom - 9) * 0.25));
    // Tens of thousands of full-size dots would only cover each other, and their pixels are
    // what a software renderer spends its frame on: dots shrink as their number grows.
    const density = Math.max(0.35, Math.min(1, Math.sqrt(4000 / Math.max(1, this.count))));
    gl.uniform1f(this.u.size, Math.max(3, this.size * scale * density * (window.devicePixelRatio || 1)));
    gl.uniform1f(this.u.square, this.square ? 1 : 0);
    gl.uniform3f(this.u.outline, this.outline[0] / 255, this.outline[1] / 255, this.outline[2] / 255);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    gl.drawArrays(gl.POINTS, 0, this.count);
    gl.disableVertexAttribArray(this.a.pos);
    gl.disableVertexAttribArray(this.a.color);
  }
}

export class CityMapView {
  constructor(container, { tiles = "", onFocus = () => {}, interactive = true, labels = true, padding,
    theme = "dark" } = {}) {
    this.onFocus = onFocus;
    this.padding = padding;
    this.labels = labels;
    this.markers = [];
    this.states = {};
    this.base = null;
    const style = fallbackStyle(tiles);
    this.map = new maplibregl.Map({ container, style, center: [121.5, 31.2], zoom: 9,
      attributionControl: false, interactive, dragRotate: false, pitchWithRotate: false,
      fadeDuration: 0, localIdeographFontFamily: CJK_FONTS, locale: mapLocale() });
    // A map made before the page's language was known labels itself once it is, and again
    // at each change (MapLibre takes its words only when the map is made).
    const label = () => this.map.getCanvas().setAttribute("aria-label", t("common:maplibre.Map.Title"));
    i18nReady.then(label);
    onLanguageChange(label);
    // The base style is fetched while the map starts: neither waits for the other.
    const loaded = new Promise((ok) => this.map.on("load", ok));
    this.ready = Promise.all([loaded, baseStyle({ theme })]).then(([, base]) => {
      try {
        this.addBase(base);
      } catch (e) {
        // A base map the browser cannot draw must not take the page's own map with it.
        console.error("base map left out:", e);
      }
    });
    this.map.on("moveend", () => this.declutter());
  }

  // The base map's layers go under everything the page draws; the page's area names are its
  // own markers, so the base map's labels of the same areas (those with a code) are left out.
  addBase(base) {
    if (!base) return;
    const m = this.map;
    m.setGlyphs(base.glyphs);
    m.setSprite(base.sprite);
    m.addSource("base", base.sources.base);
    for (const layer of base.layers) {
      if (layer.type === "background") m.setPaintProperty("bg", "background-color", layer.paint["background-color"]);
      else m.addLayer(layer);
    }
    this.placeFilters = Object.fromEntries(PLACE_LABELS.map((id) => [id, m.getFilter(id)]));
    followLanguage(m);
    credit(m, base);
    this.base = base;
  }

  // Where the page's own layers go: area fills under the water and streets, lines above them.
  below(kind) {
    if (!this.base) return undefined;
    return kind === "fill" ? BASE_ABOVE_AREAS : BASE_FIRST_LABEL;
  }

  async setAreas(fc) {
    await this.ready;
    this.features = new Map(fc.features.map((f) => [f.properties.code, f]));
    this.children = new Map();
    for (const f of fc.features) {
      const p = f.properties.parent;
      if (!this.children.has(p)) this.children.set(p, []);
      this.children.get(p).push(f.properties.code);
    }
    const m = this.map;
    m.addSource("areas", { type: "geojson", data: fc, promoteId: "code" });
    const stateColor = (table, fallback) => ["match", ["coalesce", ["feature-state", "opstate"], "daily"],
      "special", table.special, "emergency", table.emergency, fallback];
    m.addLayer({ id: "areas-fill", type: "fill", source: "areas", filter: ["==", ["get", "parent"], "-"],
      paint: { "fill-color": stateColor(STATE_FILL, STATE_FILL.daily),
        "fill-opacity": ["case", ["boolean", ["feature-state", "hover"], false], 0.95, 0.7] } }, this.below("fill"));
    m.addLayer({ id: "areas-context", type: "line", source: "areas", filter: ["==", ["get", "level"], "town"],
      paint: { "line-color": "#23344d", "line-width": 1 } }, this.below("line"));
    m.addLayer({ id: "areas-line", type: "line", source: "areas", filter: ["==", ["get", "parent"], "-"],
      paint: { "line-color": stateColor(STATE_LINE, "#3d6da8"), "line-width": 1.2 } }, this.below("line"));
    m.addLayer({ id: "focus-line", type: "line", source: "areas", filter: ["==", ["get", "code"], "-"],
      paint: { "line-color": "#9cc8ff", "line-width": 3 } }, this.below("line"));
    let hovered = null;
    m.on("mousemove", "areas-fill", (e) => {
      const code = e.features[0] && e.features[0].properties.code;
      if (code === hovered) return;
      if (hovered) m.setFeatureState({ source: "areas", id: hovered }, { hover: false });
      hovered = code;
      if (code) m.setFeatureState({ source: "areas", id: code }, { hover: true });
      m.getCanvas().style.cursor = "pointer";
    });
    m.on("mouseleave", "areas-fill", () => {
      if (hovered) m.setFeatureState({ source: "areas", id: hovered }, { hover: false });
      hovered = null;
      m.getCanvas().style.cursor = "";
    });
    m.on("click", "areas-fill", (e) => {
      const f = e.features[0];
      if (f && f.properties.code !== this.focusCode) this.focus(f.properties.code);
    });
    const roots = fc.features.filter((f) => !f.properties.parent || !this.features.has(f.properties.parent));
    this.root = roots.length ? roots[0].properties.code : null;
    this.applyStates(this.states);
  }

  name(code) {
    const f = this.features && this.features.get(code);
    return f ? localName(f.properties) : code;
  }

  trail(code) {
    const out = [];
    let c = code;
    while (c && this.features.has(c)) {
      out.unshift({ code: c, name: this.name(c), level: this.features.get(c).properties.level });
      c = this.features.get(c).properties.parent;
    }
    return out;
  }

  focus(code, { animate = true } = {}) {
    if (!this.features || !this.features.has(code)) return;
    this.focusCode = code;
    const kids = this.children.get(code) || [];
    const shown = kids.length ? kids : [code];
    this.map.setFilter("areas-fill", ["in", ["get", "code"], ["literal", shown]]);
    this.map.setFilter("areas-line", ["in", ["get", "code"], ["literal", shown]]);
    this.map.setFilter("focus-line", ["==", ["get", "code"], code]);
    const bounds = bboxOf(this.features.get(code).geometry);
    // The legend sits over the map's lower left corner: keep the area clear of it.
    this.map.fitBounds(bounds, { padding: this.padding || 40, duration: animate ? 600 : 0 });
    this.drawLabels(kids.length ? kids : []);
    this.onFocus(code, this.trail(code));
  }

  up() {
    const f = this.features.get(this.focusCode);
    if (f && f.properties.parent && this.features.has(f.properties.parent)) this.focus(f.properties.parent);
  }

  drawLabels(codes) {
    for (const m of this.markers) m.remove();
    this.markers = [];
    if (!this.labels) return;
    this.unlabelBase(codes);
    // Biggest areas first: when labels collide, the small area's name gives way.
    const size = (code) => { const [[w, s], [e, n]] = bboxOf(this.features.get(code).geometry); return (e - w) * (n - s); };
    codes = [...codes].sort((a, b) => size(b) - size(a));
    for (const code of codes) {
      const f = this.features.get(code);
      const c = f.properties.label;
      if (!c) continue;
      const node = document.createElement("div");
      node.className = "area-label";
      node.textContent = this.name(code);
      this.markers.push(new maplibregl.Marker({ element: node }).setLngLat(c).addTo(this.map));
    }
    requestAnimationFrame(() => this.declutter());
  }

  // The areas the page names with its own labels are left out of the base map's place names
  // (one name, not two); the others keep theirs, so zooming in shows the villages around.
  unlabelBase(codes) {
    if (!this.base) return;
    for (const [id, filter] of Object.entries(this.placeFilters)) {
      this.map.setFilter(id, ["all", filter, ["!", ["in", ["coalesce", ["get", "code"], ""], ["literal", codes]]]]);
    }
  }

  declutter() {
    const kept = [];
    for (const m of this.markers) {
      const e = m.getElement();
      e.style.visibility = "visible";
      const r = e.getBoundingClientRect();
      const hit = kept.some((k) => r.left < k.right + 6 && r.right > k.left - 6 && r.top < k.bottom + 2 && r.bottom > k.top - 2);
      if (hit) e.style.visibility = "hidden";
      else kept.push(r);
    }
  }

  applyStates(states) {
    this.states = states || {};
    if (!this.features) return;
    for (const code of this.features.keys()) {
      this.map.setFeatureState({ source: "areas", id: code }, { opstate: this.stateAt(code) });
    }
  }

  // The most specific setting wins, as on the server.
  stateAt(code) {
    let best = this.states.city || "daily";
    let len = 0;
    for (const [c, s] of Object.entries(this.states)) {
      if (c !== "city" && code.startsWith(c) && c.length > len) { best = s; len = c.length; }
    }
    return best;
  }

  addPoints(layer, before) {
    this.map.addLayer(layer, before);
    return layer;
  }

  addGeoJSON(id, layers) {
    this.map.addSource(id, { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    for (const l of layers) this.map.addLayer({ source: id, ...l });
  }

  setGeoJSON(id, features) {
    const src = this.map.getSource(id);
    if (src) src.setData({ type: "FeatureCollection", features });
  }
}

export { maplibregl };
