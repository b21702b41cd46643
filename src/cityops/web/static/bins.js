// The big screen's moving objects from GET /api/v1/live/objects: hexagon bins while the view
// holds too many to draw one by one, single points once zoomed in (cityops/api/live_objects.py
// says why and describes the binary frames). A stream covers the view padded by half its size
// on every side, so panning within it needs no new stream; a pan past it, or a zoom that calls
// for other hexagons, opens a new one for the new view and ends the old.
import { key } from "/static/common.js";
import { glProgram, mercator } from "/static/mapview.js";

const PAD = 0.5;
const TYPES = { u4: Uint32Array, i4: Int32Array, u1: Uint8Array };
const LOW = [32, 86, 160], HIGH = [255, 190, 60];

// Bytes of a response body cut into frames: u32 length, u32 header length, header, arrays.
export class FrameReader {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.buffer = new Uint8Array(1 << 16);
    this.length = 0;
    this.bytes = 0;
  }

  push(chunk, arrived) {
    this.bytes += chunk.byteLength;
    if (this.length + chunk.byteLength > this.buffer.length) {
      const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + chunk.byteLength));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(chunk, this.length);
    this.length += chunk.byteLength;
    let at = 0;
    const view = new DataView(this.buffer.buffer);
    while (this.length - at >= 8) {
      const size = view.getUint32(at, true) + 4;
      if (this.length - at < size) break;
      // Copied out, so the typed arrays of a frame stay valid while the buffer is reused.
      this.onFrame(...decodeFrame(this.buffer.slice(at, at + size).buffer), arrived);
      at += size;
    }
    if (at) { this.buffer.copyWithin(0, at, this.length); this.length -= at; }
  }
}

export function decodeFrame(buf) {
  const view = new DataView(buf);
  const headLength = view.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, headLength)));
  const arrays = {};
  let at = 8 + headLength;
  for (const [name, type, n] of header.arrays || []) {
    const T = TYPES[type];
    arrays[name] = new T(buf, at, n);
    at += n * T.BYTES_PER_ELEMENT;
    at += (4 - (at % 4)) % 4;
  }
  return [header, arrays];
}

// Hexagons filled by how many objects each holds (a log scale up to the fullest in view),
// drawn as triangles by one WebGL call; a frame rebuilds the vertex buffer (a few thousand
// hexagons at most: the server bins only while the view holds more than 50,000 objects).
export class BinsLayer {
  constructor(id) {
    this.id = id;
    this.type = "custom";
    this.renderingMode = "2d";
    this.bins = new Map(); // cell row -> { ring: [x, y] * 7 (centre first), count }
    this.visible = true;
    this.dirty = true;
    this.vertices = 0;
  }

  clear() { this.bins.clear(); this.changed(); }

  apply(a, q) {
    const shape = a.shape;
    for (let k = 0; k < a.new.length; k++) {
      const ring = new Float32Array(14);
      for (let v = 0; v < 7; v++) {
        const [x, y] = mercator(shape[14 * k + 2 * v + 1] / q, shape[14 * k + 2 * v] / q);
        ring[2 * v] = x; ring[2 * v + 1] = y;
      }
      this.bins.set(a.new[k], { ring, count: 0 });
    }
    for (let k = 0; k < a.cell.length; k++) {
      const bin = this.bins.get(a.cell[k]);
      if (bin) bin.count = a.count[k];
    }
    for (const row of a.gone) this.bins.delete(row);
    this.changed();
  }

  total() {
    let n = 0;
    for (const b of this.bins.values()) n += b.count;
    return n;
  }

  changed() {
    this.dirty = true;
    if (this.map) this.map.triggerRepaint();
  }

  onAdd(map, gl) {
    this.map = map;
    const vs = `#version 300 es
      uniform mat4 u_matrix; in vec2 a_pos; in vec4 a_color; out vec4 v_color;
      void main() { gl_Position = u_matrix * vec4(a_pos, 0.0, 1.0); v_color = a_color; }`;
    const fs = `#version 300 es
      precision mediump float; in vec4 v_color; out vec4 color;
      void main() { color = v_color; }`;
    const p = glProgram(gl, vs, fs);
    this.program = p;
    this.u = gl.getUniformLocation(p, "u_matrix");
    this.a = { pos: gl.getAttribLocation(p, "a_pos"), color: gl.getAttribLocation(p, "a_color") };
    this.posBuffer = gl.createBuffer();
    this.colorBuffer = gl.createBuffer();
  }

  build(gl) {
    let top = 1;
    for (const b of this.bins.values()) if (b.count > top) top = b.count;
    const scale = 1 / Math.log1p(top);
    const pos = new Float32Array(this.bins.size * 36);
    const color = new Uint8Array(this.bins.size * 72);
    let v = 0;
    for (const { ring, count } of this.bins.values()) {
      if (!count) continue;
      const f = Math.log1p(count) * scale;
      const r = LOW[0] + (HIGH[0] - LOW[0]) * f, g = LOW[1] + (HIGH[1] - LOW[1]) * f;
      const b = LOW[2] + (HIGH[2] - LOW[2]) * f, alpha = 110 + 110 * f;
      for (let e = 1; e <= 6; e++) {
        const next = e === 6 ? 1 : e + 1;
        for (const c of [0, e, next]) {
          pos[2 * v] = ring[2 * c]; pos[2 * v + 1] = ring[2 * c + 1];
          color.set([r, g, b, alpha], 4 * v);
          v += 1;
        }
      }
    }
    gl.bindBuffer(gl.ARRAY_BUFFER, this.posBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, pos.subarray(0, 2 * v), gl.DYNAMIC_DRAW);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.colorBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, color.subarray(0, 4 * v), gl.DYNAMIC_DRAW);
    this.vertices = v;
    this.dirty = false;
  }

  render(gl, args) {
    if (!this.visible || !this.bins.size) return;
    gl.useProgram(this.program);
    if (this.dirty) this.build(gl);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.posBuffer);
    gl.enableVertexAttribArray(this.a.pos);
    gl.vertexAttribPointer(this.a.pos, 2, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.colorBuffer);
    gl.enableVertexAttribArray(this.a.color);
    gl.vertexAttribPointer(this.a.color, 4, gl.UNSIGNED_BYTE, true, 0, 0);
    const m = args.defaultProjectionData ? args.defaultProjectionData.mainMatrix : args.modelViewProjectionMatrix;
    gl.uniformMatrix4fv(this.u, false, m);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    gl.drawArrays(gl.TRIANGLES, 0, this.vertices);
    gl.disableVertexAttribArray(this.a.pos);
    gl.disableVertexAttribArray(this.a.color);
  }
}

// The stream for the current view, feeding a PointsLayer (objects packed into slots, so the
// layer's buffers hold what is in view, not a million mostly empty places) and a BinsLayer.
export class LiveObjects {
  constructor({ map, points, bins, color, onFrame = () => {} }) {
    this.map = map;
    this.points = points;
    this.bins = bins;
    this.color = color; // role name -> [r, g, b]
    this.onFrame = onFrame; // (header, arrived): told after each frame is applied
    this.mode = null;
    this.header = null;
    this.slotOf = new Map();
    this.free = [];
    this.next = 0;
    this.frames = 0;
    this.bytes = 0;
    this.reconnects = 0;
    this.asked = null; // { bbox: [w, s, e, n], zoom, res }
    map.on("moveend", () => this.look());
  }

  get total() { return this.header ? this.header.total : 0; }
  roleCount(role) { return this.header && this.header.roles ? this.header.roles[role] || 0 : 0; }

  // Opens a stream for the view when the one running does not cover it.
  look() {
    const b = this.map.getBounds();
    const zoom = this.map.getZoom();
    const [w, s, e, n] = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
    const a = this.asked;
    const covered = a && w >= a.bbox[0] && s >= a.bbox[1] && e <= a.bbox[2] && n <= a.bbox[3] &&
      Math.abs(zoom - a.zoom) < 0.5;
    if (covered) return;
    const dx = (e - w) * PAD, dy = (n - s) * PAD;
    const bbox = [Math.max(-180, w - dx), Math.max(-85, s - dy), Math.min(180, e + dx), Math.min(85, n + dy)];
    this.asked = { bbox, zoom };
    this.open(bbox, zoom);
  }

  async open(bbox, zoom) {
    if (this.abort) this.abort.abort();
    const abort = this.abort = new AbortController();
    let delay = 500;
    while (!abort.signal.aborted) {
      const reader = new FrameReader((h, a, arrived) => this.frame(h, a, arrived));
      try {
        const q = `bbox=${bbox.map((x) => x.toFixed(5)).join(",")}&zoom=${zoom.toFixed(2)}`;
        const r = await fetch(`/api/v1/live/objects?${q}`, { signal: abort.signal, cache: "no-store",
          headers: { Authorization: `Bearer ${key()}`, Accept: "application/octet-stream" } });
        if (r.status === 401 || r.status === 403) return;
        if (!r.ok) throw new Error(`objects feed answered ${r.status}`);
        delay = 500;
        const body = r.body.getReader();
        for (;;) {
          const { value, done } = await body.read();
          if (done) break;
          this.bytes += value.byteLength;
          reader.push(value, performance.now());
        }
      } catch (e) {
        if (abort.signal.aborted) return;
      }
      this.reconnects += 1;
      await new Promise((ok) => setTimeout(ok, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }

  frame(h, a, arrived) {
    if (h.kind === "ping") return;
    if (h.kind === "closed") { if (this.abort) this.abort.abort(); return; }
    this.frames += 1;
    if (this.frames === 1) performance.mark("cityops:objects");
    if (h.full || h.kind !== this.mode) {
      if (h.kind === "points" || this.mode === "points") this.clearPoints();
      if (h.kind === "bins" || this.mode === "bins") this.bins.clear();
    }
    this.mode = h.kind;
    this.header = h;
    if (h.kind === "points") this.applyPoints(h, a);
    else this.bins.apply(a, h.q);
    this.onFrame(h, arrived);
  }

  clearPoints() {
    const p = this.points;
    p.pos.fill(NaN);
    p.count = 0;
    this.slotOf.clear();
    this.free = [];
    this.next = 0;
    p.changed();
  }

  applyPoints(h, a) {
    const p = this.points;
    for (const i of a.gone) {
      const slot = this.slotOf.get(i);
      if (slot === undefined) continue;
      this.slotOf.delete(i);
      p.hide(slot);
      this.free.push(slot);
    }
    const slots = new Int32Array(a.i.length);
    for (let k = 0; k < a.i.length; k++) {
      let slot = this.slotOf.get(a.i[k]);
      if (slot === undefined) {
        slot = this.free.length ? this.free.pop() : this.next++;
        this.slotOf.set(a.i[k], slot);
        p.paint(slot, this.color(h.role_names[a.role[k]]));
      }
      slots[k] = slot;
    }
    p.setMany(slots, a.lat, a.lon, h.q);
    p.changed();
  }
}
