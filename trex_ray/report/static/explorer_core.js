/* trex tree explorer — core: DOM helpers, the model, the tree layout and the tree view.
 *
 * Safety: nothing here parses markup. Data reaches the page only through textContent,
 * createTextNode and setAttribute with attribute names written in this file.
 * Speed: the layout is one O(n) pass; the view draws only the nodes inside (a margin around)
 * the visible rectangle, and deep subtrees start collapsed when a run is large.
 */
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const COLW = 300;             // layout: pixels per tree level (x)
const CHW = 6.95;             // width of one character of a node label (monospace, 11.5px)
const ROWH = 28;              // layout: pixels per leaf row (y)
const R = 7;                  // node radius
const AUTO_VISIBLE = 300;     // above this many nodes, deep subtrees start collapsed
const MIN_K = 0.01, MAX_K = 3; // zoom limits (0.01: 2,000 expanded rows fit on a screen)
const STATUSES = ["finished", "pruned", "running", "pending", "stopped", "failed"];

// --- DOM helpers --------------------------------------------------------------------------
function setAttrs(e, attrs) {
  if (!attrs) return;
  for (const k of Object.keys(attrs)) {
    const v = attrs[k];
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k === "on") for (const ev of Object.keys(v)) e.addEventListener(ev, v[ev]);
    else e.setAttribute(k, String(v));
  }
}
function addKids(e, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    e.append(typeof k === "object" ? k : document.createTextNode(String(k)));
  }
}
/** An HTML element: h("td", {class: "x", text: value}, ...children). Text only, never markup. */
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  addKids(e, kids);
  return e;
}
/** An SVG element, as h(). */
function s(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  setAttrs(e, attrs);
  addKids(e, kids);
  return e;
}

// --- formatting ---------------------------------------------------------------------------
function fmtMetric(m) { return m === null || m === undefined ? "–" : m.toFixed(4); }
function fmtDelta(d) { return d === null || d === undefined ? "" : (d >= 0 ? "+" : "") + d.toFixed(4); }
function fmtSeconds(x) {
  if (x === null || x === undefined) return "–";
  if (x < 60) return x.toFixed(1) + " s";
  if (x < 3600) return (x / 60).toFixed(1) + " min";
  return (x / 3600).toFixed(2) + " h";
}
function fmtValue(v) {
  if (v === true) return "on";
  if (v === null || v === undefined) return "–";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}
function fmtTime(t) { return t ? new Date(t * 1000).toLocaleTimeString() : "–"; }
/** A node's metric, else its status (with how far a running node has got). */
function scoreText(n) {
  if (n.metric !== null && n.metric !== undefined) return fmtMetric(n.metric);
  const last = n.curve && n.curve.length ? n.curve[n.curve.length - 1] : null;
  return n.status === "running" && last ? `running ${Math.round(last[0] * 100)}%` : n.status;
}
function clip(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }
function idNum(id) { const v = parseInt(id.slice(1), 10); return Number.isFinite(v) ? v : 1e9; }

// --- colour -------------------------------------------------------------------------------
const PALETTE = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]]; // viridis
function paletteAt(t) {
  t = Math.min(1, Math.max(0, t)) * (PALETTE.length - 1);
  const i = Math.min(PALETTE.length - 2, Math.floor(t)), f = t - i;
  const c = PALETTE[i].map((a, j) => Math.round(a + (PALETTE[i + 1][j] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// --- the model ----------------------------------------------------------------------------
/** The run's data with parent/children links, subtree sizes and the metric range. */
class Model {
  constructor(data) {
    this.data = data;
    this.nodes = data.nodes;
    this.byId = new Map();
    for (const n of this.nodes) { n.kids = []; n.size = 1; this.byId.set(n.id, n); }
    this.roots = [];
    for (const n of this.nodes) {
      const p = n.parent === null ? null : this.byId.get(n.parent);
      if (p) p.kids.push(n); else this.roots.push(n);
    }
    for (const n of this.nodes) if (n.kids.length > 1) n.kids.sort((a, b) => idNum(a.id) - idNum(b.id));
    for (let i = this.nodes.length - 1; i >= 0; i--) {   // parents come before their children
      const n = this.nodes[i], p = n.parent === null ? null : this.byId.get(n.parent);
      if (p) p.size += n.size;
    }
    this.best = new Set(data.best_path || []);
    this.bestId = data.best_path && data.best_path.length ? data.best_path[data.best_path.length - 1] : null;
    this.higher = data.task.higher_is_better !== false;
    const ms = this.nodes.map(n => n.metric).filter(m => m !== null && m !== undefined);
    this.lo = ms.length ? Math.min(...ms) : 0;
    this.hi = ms.length ? Math.max(...ms) : 1;
    this.base = data.base_metric;
  }
  get(id) { return this.byId.get(id) || null; }
  parentOf(n) { return n.parent === null ? null : this.get(n.parent); }
  color(n) {
    if (n.metric === null || n.metric === undefined) return null;
    let t = this.hi > this.lo ? (n.metric - this.lo) / (this.hi - this.lo) : 1;
    if (!this.higher) t = 1 - t;
    return paletteAt(t);
  }
  ancestors(n) {
    const out = [];
    for (let p = this.parentOf(n); p; p = this.parentOf(p)) out.push(p);
    return out;
  }
  /** The depth from which subtrees start collapsed so that about AUTO_VISIBLE nodes show. */
  autoDepth() {
    if (this.nodes.length <= AUTO_VISIBLE) return null;
    const perDepth = [];
    for (const n of this.nodes) perDepth[n.depth] = (perDepth[n.depth] || 0) + 1;
    let total = 0, depth = 1;
    for (let d = 0; d < perDepth.length; d++) {
      total += perDepth[d] || 0;
      if (total > AUTO_VISIBLE) break;
      depth = Math.max(1, d);
    }
    return depth;
  }
}

// --- layout -------------------------------------------------------------------------------
/** Left-to-right tidy layout in one pass: leaves take consecutive rows, a parent sits in the
 *  middle of its children. Returns the visible nodes sorted by y (for range queries). */
function layoutTree(model, isCollapsed) {
  for (const n of model.nodes) n.shown = false;
  const visible = [];
  let row = 0;
  for (const root of model.roots) {
    const stack = [[root, false]];
    while (stack.length) {
      const top = stack[stack.length - 1], n = top[0];
      if (!top[1]) {
        n.shown = true;
        n.x = (n.depth - root.depth) * COLW;
        visible.push(n);
        if (!n.kids.length || isCollapsed(n)) { n.y = row++ * ROWH; stack.pop(); continue; }
        top[1] = true;
        for (let i = n.kids.length - 1; i >= 0; i--) stack.push([n.kids[i], false]);
      } else {
        n.y = (n.kids[0].y + n.kids[n.kids.length - 1].y) / 2;
        stack.pop();
      }
    }
    row += 1; // a gap between separate roots
  }
  visible.sort((a, b) => a.y - b.y);
  return visible;
}

/** Index of the first node with y >= v in nodes sorted by y. */
function lowerBound(nodes, v) {
  let lo = 0, hi = nodes.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (nodes[mid].y < v) lo = mid + 1; else hi = mid; }
  return lo;
}

// --- the tree view ------------------------------------------------------------------------
/** The SVG tree: pan (drag), zoom (wheel, buttons), culling to the visible rectangle. */
class TreeView {
  constructor(app, container) {
    this.app = app;
    this.k = 1; this.tx = 40; this.ty = 40;
    this.svg = s("svg", {id: "tree-svg", class: "tree-svg", role: "tree", "aria-label": "search tree"});
    this.vp = s("g", {class: "viewport"});
    this.edges = s("g", {class: "edges"});
    this.bestEdges = s("g", {class: "edges best-edges"});
    this.nodeLayer = s("g", {class: "nodes"});
    this.vp.append(this.edges, this.bestEdges, this.nodeLayer);
    this.svg.append(this.vp);
    container.append(this.svg);
    this.els = new Map();      // node id -> rendered element
    this.drawn = null;         // the layout rectangle drawn last, and at which zoom
    this.visible = [];
    this.raf = 0;
    this._bindPointer();
  }

  size() { const r = this.svg.getBoundingClientRect(); return {w: r.width || 800, h: r.height || 600}; }

  /** The visible rectangle in layout coordinates. */
  viewRect() {
    const {w, h: ht} = this.size();
    return {x0: -this.tx / this.k, y0: -this.ty / this.k, x1: (w - this.tx) / this.k, y1: (ht - this.ty) / this.k};
  }

  relayout() {
    this.visible = layoutTree(this.app.model, n => this.app.isCollapsed(n));
    this.drawn = null;
  }

  setView(k, tx, ty) {
    this.k = Math.min(MAX_K, Math.max(MIN_K, k)); this.tx = tx; this.ty = ty;
    this.vp.setAttribute("transform", `translate(${this.tx},${this.ty}) scale(${this.k})`);
    this.svg.classList.toggle("far", this.k < 0.45);
    const v = this.viewRect(), d = this.drawn;
    const inside = d && v.x0 >= d.x0 && v.x1 <= d.x1 && v.y0 >= d.y0 && v.y1 <= d.y1
      && this.k / d.k < 1.6 && d.k / this.k < 1.6;
    if (!inside) this.schedule();
  }

  schedule() {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => { this.raf = 0; this.draw(); });
  }

  fit() {
    const {w, h: ht} = this.size(), vis = this.visible;
    if (!vis.length) return;
    let x1 = 0, y0 = Infinity, y1 = -Infinity;
    for (const n of vis) { x1 = Math.max(x1, n.x); y0 = Math.min(y0, n.y); y1 = Math.max(y1, n.y); }
    const k = Math.min(1.2, (w - 80) / (x1 + COLW), (ht - 60) / (y1 - y0 + ROWH));
    this.setView(k, Math.max(30, (w - (x1 + COLW) * k) / 2), (ht - (y1 + y0) * k) / 2);
  }

  /** A first view that stays readable: fit when that is not too small, else start at the root. */
  home() {
    this.fit();
    if (this.k >= 0.55) return;
    const {h: ht} = this.size(), root = this.app.model.roots[0];
    this.setView(0.55, 30, ht / 2 - (root ? root.y : 0) * 0.55);
  }

  /** Bring ``n`` into view (centred if it was outside the middle of the view). */
  centerOn(n) {
    const {w, h: ht} = this.size(), sx = n.x * this.k + this.tx, sy = n.y * this.k + this.ty;
    if (this.k >= 0.6 && sx > w * 0.1 && sx < w * 0.75 && sy > ht * 0.1 && sy < ht * 0.9) return;
    const k = Math.max(this.k, 0.6);
    this.setView(k, w * 0.4 - n.x * k, ht / 2 - n.y * k);
  }

  /** Draw what lies in the visible rectangle and one screen around it. */
  draw() {
    if (this.raf) { cancelAnimationFrame(this.raf); this.raf = 0; }
    const v = this.viewRect(), mw = v.x1 - v.x0, mh = v.y1 - v.y0;
    const r = {x0: v.x0 - mw, x1: v.x1 + mw, y0: v.y0 - mh, y1: v.y1 + mh, k: this.k};
    const model = this.app.model, vis = this.visible;
    const inView = [];
    for (let i = lowerBound(vis, r.y0 - ROWH); i < vis.length && vis[i].y <= r.y1 + ROWH; i++) {
      const n = vis[i];
      if (n.x >= r.x0 - COLW && n.x <= r.x1 + COLW) inView.push(n);
    }
    // Edges: every child edge of every shown ancestor of a drawn node (trunks crossing the view).
    const parents = new Set();
    for (const n of inView) {
      for (let p = model.parentOf(n); p && !parents.has(p); p = model.parentOf(p)) parents.add(p);
      if (n.kids.length && !this.app.isCollapsed(n)) parents.add(n);
    }
    const edgeFrag = document.createDocumentFragment(), bestFrag = document.createDocumentFragment();
    for (const p of parents) {
      if (!p.shown || this.app.isCollapsed(p)) continue;
      for (const c of p.kids) {
        const tx = c.x - 26;
        const best = model.best.has(p.id) && model.best.has(c.id);
        const dim = this.app.isDimmed(c) ? " dim" : "";
        const from = Math.min(tx - 4, p.x + this.labelOf(p).end + 5);
        (best ? bestFrag : edgeFrag).append(s("path", {
          class: "edge" + (best ? " best" : "") + dim,
          d: `M${from},${p.y}H${tx}V${c.y}H${c.x - R}`,
        }));
      }
    }
    const nodeFrag = document.createDocumentFragment();
    this.els = new Map();
    for (const n of inView) {
      const el = this.nodeEl(n);
      this.els.set(n.id, el);
      nodeFrag.append(el);
    }
    this.edges.replaceChildren(edgeFrag);
    this.bestEdges.replaceChildren(bestFrag);
    this.nodeLayer.replaceChildren(nodeFrag);
    this.drawn = r;
  }

  nodeClass(n) {
    const app = this.app, c = ["node", "st-" + n.status];
    if (app.model.best.has(n.id)) c.push("on-best");
    if (n.id === app.model.bestId) c.push("best-node");
    if (n.id === app.selected) c.push("selected");
    if (app.isDimmed(n)) c.push("dim");
    if (app.matches && app.matches.has(n.id)) c.push("match");
    if (app.fresh.has(n.id)) c.push("fresh");
    if (n.kids.length && app.isCollapsed(n)) c.push("collapsed");
    return c.join(" ");
  }

  /** A node's one-line label (monospace): id, metric (or status), the plan cut to end before the
   *  children's trunk, and "+N" hidden descendants; ``end`` is where it ends (for the edges). */
  labelOf(n) {
    const model = this.app.model, collapsed = n.kids.length > 0 && this.app.isCollapsed(n);
    const x = n.kids.length ? R + 19 : R + 6;
    const id = n.id + (n.id === model.bestId ? " ★" : ""), score = scoreText(n);
    const more = collapsed ? ` +${n.size - 1}` : "";
    const room = Math.floor((COLW - 34 - x) / CHW) - id.length - score.length - more.length - 2;
    const plan = room > 3 ? " " + clip(n.label || "", room) : "";
    return {x, id, score, plan, more, collapsed, end: x + (id.length + score.length + plan.length + more.length + 1) * CHW};
  }

  nodeEl(n) {
    const model = this.app.model, color = model.color(n);
    const g = s("g", {class: this.nodeClass(n), "data-node-id": n.id, transform: `translate(${n.x},${n.y})`,
      role: "treeitem", "aria-label": `${n.id} ${n.status} ${fmtMetric(n.metric)}`});
    if (n.status === "running") g.append(s("circle", {class: "pulse", r: R + 2}));
    // Zoomed far out, dots keep about 2.5 screen pixels so that the tree's shape stays visible.
    const r = Math.max(n.id === model.bestId ? R + 2 : R, this.k < 0.45 ? 2.5 / this.k : 0);
    g.append(s("circle", {class: "dot", r, fill: color}));
    if (n.status === "failed") g.append(s("path", {class: "cross", d: "M-3.5,-3.5L3.5,3.5M3.5,-3.5L-3.5,3.5"}));
    const L = this.labelOf(n);
    if (n.kids.length) {
      g.append(s("g", {class: "knob", transform: `translate(${R + 9},0)`},
        s("circle", {r: 5.5}), s("path", {d: L.collapsed ? "M-3,0H3M0,-3V3" : "M-3,0H3"})));
    }
    const label = s("text", {class: "label", x: L.x, y: 4}, s("tspan", {class: "nid", text: L.id}),
      s("tspan", {class: "nmetric", text: " " + L.score}), s("tspan", {class: "nplan", text: L.plan}));
    if (L.more) label.append(s("tspan", {class: "nmore", text: L.more}));
    g.append(label);
    g.append(s("title", {text: `${n.id} · ${n.status} · ${fmtMetric(n.metric)}\n${n.label || ""}`}));
    return g;
  }

  /** Re-class drawn nodes (selection, matches) without a redraw: those of ``ids``, or all. */
  restyle(ids) {
    for (const id of ids || this.els.keys()) {
      const el = this.els.get(id), n = this.app.model.get(id);
      if (el && n) el.setAttribute("class", this.nodeClass(n));
    }
  }

  _bindPointer() {
    let drag = null;
    this.svg.addEventListener("pointerdown", e => {
      if (e.button !== 0) return;
      drag = {x: e.clientX, y: e.clientY, tx: this.tx, ty: this.ty, moved: false};
    });
    window.addEventListener("pointermove", e => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      if (!drag.moved) { drag.moved = true; this.svg.classList.add("panning"); }
      this.setView(this.k, drag.tx + dx, drag.ty + dy);
    });
    window.addEventListener("pointerup", () => {
      if (drag && drag.moved) this.suppressClick = true;
      drag = null;
      this.svg.classList.remove("panning");
    });
    this.svg.addEventListener("wheel", e => {
      e.preventDefault();
      const rect = this.svg.getBoundingClientRect(), mx = e.clientX - rect.left, my = e.clientY - rect.top;
      const k = Math.min(MAX_K, Math.max(MIN_K, this.k * Math.exp(-e.deltaY * 0.0015)));
      this.setView(k, mx - (mx - this.tx) * (k / this.k), my - (my - this.ty) * (k / this.k));
    }, {passive: false});
    this.svg.addEventListener("click", e => {
      if (this.suppressClick) { this.suppressClick = false; return; }
      const g = e.target.closest("[data-node-id]");
      if (!g) return;
      const id = g.getAttribute("data-node-id");
      if (e.target.closest(".knob")) this.app.toggle(id);
      else this.app.select(id, {reveal: false, t0: performance.now()});
    });
    this.svg.addEventListener("dblclick", e => {
      const g = e.target.closest("[data-node-id]");
      if (g) this.app.toggle(g.getAttribute("data-node-id"));
    });
  }

  zoomBy(f) {
    const {w, h: ht} = this.size();
    const k = Math.min(MAX_K, Math.max(MIN_K, this.k * f));
    this.setView(k, w / 2 - (w / 2 - this.tx) * (k / this.k), ht / 2 - (ht / 2 - this.ty) * (k / this.k));
  }
}
