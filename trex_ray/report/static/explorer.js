/* trex tree explorer — the app: page skeleton, selection, collapse state, status filters, search,
 * keyboard, live updates from /data.json (when served by `trex serve`), and timings that the
 * browser tests read from window.__trex. */

const POLL_MS = 1500;
const T_START = performance.now();

function signature(n) {
  return JSON.stringify([n.status, n.metric, (n.curve || []).length, n.insight, n.log, n.error, n.prune_reason,
    n.kids.length, n.finished_at, n.attempts]);
}

class App {
  constructor(data) {
    this.timings = {scriptStart: T_START};
    this.selected = null;
    this.hidden = new Set();        // statuses filtered out
    this.toggled = new Map();       // node id -> collapsed, where the user chose
    this.matches = null;            // ids matching the search box
    this.fresh = new Set();         // ids that just appeared or changed status (live)
    this.model = new Model(data);
    this.autoDepth = this.model.autoDepth();
    this.buildPage();
    this.tree = new TreeView(this, this.treeBox);
    this.renderPanels();
    renderDetails(this, null);
    this.tree.relayout();
    this.tree.home();
    this.tree.draw();
    this.timings.firstRender = performance.now();
    this.timings.script = this.timings.firstRender - T_START;
    const hash = decodeURIComponent(location.hash.slice(1));
    if (hash && this.model.get(hash)) this.select(hash, {reveal: true});
    this.bindKeys();
    this.startLive();
  }

  buildPage() {
    const tb = (text, title, fn) => h("button", {type: "button", class: "tool", title, text, on: {click: fn}});
    this.search = h("input", {type: "search", id: "search", placeholder: "find: n12, lora, dedup…", "aria-label": "find nodes"});
    this.searchInfo = h("span", {class: "search-info"});
    this.header = h("div", {class: "top-info"});
    this.liveBox = h("span", {class: "live-state"});
    const top = h("header", {class: "top"}, h("div", {class: "brand"}, h("b", {text: "trex"}), h("span", {text: " explorer"})),
      this.header, h("div", {class: "spacer"}), this.liveBox, this.search, this.searchInfo);
    this.treeBox = h("div", {class: "tree-box", id: "tree"});
    this.legend = h("div", {class: "legend", id: "legend"});
    const tools = h("div", {class: "toolbar"},
      tb("+", "zoom in", () => this.tree.zoomBy(1.3)), tb("−", "zoom out", () => this.tree.zoomBy(1 / 1.3)),
      tb("fit", "fit the tree to the view (f)", () => this.tree.fit()),
      tb("best", "show the best node (b)", () => this.model.bestId && this.select(this.model.bestId, {reveal: true})),
      tb("expand all", "expand every subtree", () => this.expandAll()),
      tb("collapse", "collapse deep subtrees", () => this.collapseDeep()));
    this.treeBox.append(this.legend, tools);
    this.board = h("div", {class: "board-box", id: "leaderboard"});
    this.compute = h("div", {class: "compute-box", id: "compute"});
    this.details = h("aside", {class: "details", id: "details", "aria-live": "polite"});
    const left = h("div", {class: "left"}, this.treeBox, h("div", {class: "bottom"}, this.board, this.compute));
    document.body.append(top, h("main", {class: "main"}, left, this.details));
    let timer = 0;
    this.search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => this.find(), 150); });
    this.search.addEventListener("keydown", e => { if (e.key === "Enter") this.nextMatch(); });
  }

  // --- state --------------------------------------------------------------------------
  isCollapsed(n) {
    if (this.toggled.has(n.id)) return this.toggled.get(n.id);
    return this.autoDepth !== null && n.depth >= this.autoDepth && n.kids.length > 0 && !this.model.best.has(n.id);
  }
  isDimmed(n) { return this.hidden.has(n.status); }

  /** Relayout, keeping node ``anchor`` where it is on screen. */
  relayoutKeeping(anchor) {
    const t = this.tree, sx = anchor ? anchor.x * t.k + t.tx : 0, sy = anchor ? anchor.y * t.k + t.ty : 0;
    t.relayout();
    if (anchor) t.setView(t.k, sx - anchor.x * t.k, sy - anchor.y * t.k);
    t.draw();
  }

  toggle(id) {
    const n = this.model.get(id);
    if (!n || !n.kids.length) return;
    this.toggled.set(id, !this.isCollapsed(n));
    this.relayoutKeeping(n);
  }

  expandAll() { this.expandedAll = true; this.autoDepth = null; this.toggled.clear(); this.relayoutKeeping(this.model.get(this.selected)); }
  collapseDeep() {
    this.expandedAll = false;
    this.autoDepth = this.model.autoDepth() || 2;
    this.toggled.clear();
    this.tree.relayout();
    this.tree.home();
    this.tree.draw();
  }

  select(id, opts) {
    const t0 = opts && opts.t0 !== undefined ? opts.t0 : performance.now();
    const n = this.model.get(id);
    if (!n) return;
    const previous = this.selected;
    this.selected = id;
    if (opts && opts.reveal) {
      let changed = false;
      for (const a of this.model.ancestors(n)) if (this.isCollapsed(a)) { this.toggled.set(a.id, false); changed = true; }
      if (changed) this.tree.relayout();
      this.tree.centerOn(n);
      this.tree.draw();
    } else {
      this.tree.restyle([previous, id]);
    }
    renderDetails(this, n);
    if (this.details.scrollTop) this.details.scrollTop = 0;
    for (const tr of this.board.querySelectorAll("tr[data-node-id]")) {
      tr.classList.toggle("selected", tr.getAttribute("data-node-id") === id);
    }
    this.timings.lastSelect = performance.now() - t0;
    if (location.hash.slice(1) !== id) history.replaceState(null, "", "#" + encodeURIComponent(id));
  }

  setFilter(status, shown) {
    if (shown) this.hidden.delete(status); else this.hidden.add(status);
    this.tree.draw();
    renderLeaderboard(this, this.board, 20);
  }

  find() {
    const q = this.search.value.trim().toLowerCase();
    this.matchIndex = -1;
    if (!q) { this.matches = null; this.searchInfo.textContent = ""; this.tree.restyle(); return; }
    const hit = n => n.id.toLowerCase() === q || [n.label, n.rationale, n.insight, n.error, n.status]
      .some(t => t && t.toLowerCase().includes(q));
    this.matchList = this.model.nodes.filter(hit).map(n => n.id);
    this.matches = new Set(this.matchList);
    this.searchInfo.textContent = `${this.matchList.length} found`;
    this.tree.restyle();
  }
  nextMatch() {
    if (!this.matchList || !this.matchList.length) return;
    this.matchIndex = (this.matchIndex + 1) % this.matchList.length;
    this.select(this.matchList[this.matchIndex], {reveal: true});
  }

  bindKeys() {
    document.addEventListener("keydown", e => {
      if (e.target && (e.target.tagName === "INPUT" || e.target.tagName === "TEXTAREA")) return;
      const n = this.selected ? this.model.get(this.selected) : null;
      const go = m => { if (m) { this.select(m.id, {reveal: true}); e.preventDefault(); } };
      if (e.key === "f") this.tree.fit();
      else if (e.key === "b" && this.model.bestId) go(this.model.get(this.model.bestId));
      else if (e.key === "Escape") { this.selected = null; this.tree.restyle(); renderDetails(this, null); }
      else if (!n) { if (e.key.startsWith("Arrow")) go(this.model.roots[0]); }
      else if (e.key === "ArrowLeft") go(this.model.parentOf(n));
      else if (e.key === "ArrowRight") go(n.kids[0]);
      else if (e.key === "ArrowUp" || e.key === "ArrowDown") {
        const p = this.model.parentOf(n), sib = p ? p.kids : this.model.roots, i = sib.indexOf(n);
        go(sib[i + (e.key === "ArrowUp" ? -1 : 1)]);
      }
    });
  }

  // --- panels -------------------------------------------------------------------------
  renderPanels() {
    this.renderHeader();
    renderLegend(this, this.legend);
    renderLeaderboard(this, this.board, 20);
    renderCompute(this, this.compute);
  }

  renderHeader() {
    const d = this.model.data, m = this.model, best = m.bestId ? m.get(m.bestId) : null;
    const total = d.compute && d.compute.length ? d.compute[d.compute.length - 1][0] : 0;
    document.title = `trex · ${d.run_id || d.task.name || "run"}`;
    const arrow = m.higher ? "↑" : "↓";
    this.header.replaceChildren(
      h("span", {class: "run-id", text: d.run_id || ""}),
      h("span", {class: "muted", text: d.task.name || "", title: [d.task.model, d.task.description].filter(Boolean).join("\n")}),
      h("span", {class: "stat", id: "node-count", text: `${m.nodes.length} nodes`}),
      best ? h("span", {class: "stat"}, h("span", {class: "muted", text: `best ${d.task.metric} ${arrow} `}),
        nodeLink(this, best.id), h("b", {text: " " + fmtMetric(best.metric)}),
        m.base !== null && best.id !== (m.roots[0] && m.roots[0].id)
          ? h("span", {class: "delta", text: ` (${fmtDelta(best.metric - m.base)} vs base)`}) : null) : null,
      best && best.test_metric !== null && best.test_metric !== undefined && d.base_test_metric !== null
        ? h("span", {class: "stat", id: "test-score", text: `test ${fmtMetric(best.test_metric)} vs base `
            + `${fmtMetric(d.base_test_metric)}`}) : null,
      h("span", {class: "stat", text: `compute ${fmtSeconds(total)}`}));
    const finished = d.finished_reason ? `finished: ${d.finished_reason}` : "";
    if (!d.live) this.liveBox.textContent = finished || "snapshot " + fmtTime(d.generated_at);
  }

  // --- live ---------------------------------------------------------------------------
  startLive() {
    if (!this.model.data.live || !/^https?:$/.test(location.protocol)) return;
    this.liveBox.classList.add("on");
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        const r = await fetch("data.json?since=" + encodeURIComponent(this.model.data.version), {cache: "no-store"});
        if (!r.ok) throw new Error("HTTP " + r.status);
        const data = await r.json();
        if (!data.unchanged) this.update(data);
        const fin = this.model.data.finished_reason;
        this.liveBox.classList.remove("error");
        this.liveBox.textContent = `${fin ? "finished: " + fin : "live"} · updated ${new Date().toLocaleTimeString()}`;
      } catch (err) {
        this.liveBox.classList.add("error");
        this.liveBox.textContent = "disconnected: " + String(err && err.message || err);
      } finally {
        busy = false;
      }
    };
    tick();
    this.poller = setInterval(tick, POLL_MS);
  }

  update(data) {
    const old = this.model, before = this.selected ? old.get(this.selected) : null;
    const beforeSig = before ? signature(before) : null;
    this.fresh = new Set(data.nodes.filter(n => { const o = old.get(n.id); return !o || o.status !== n.status; })
      .map(n => n.id));
    this.model = new Model(data);
    if (!this.expandedAll) this.autoDepth = this.model.autoDepth();
    this.tree.relayout();
    this.tree.draw();
    this.renderPanels();
    const now = this.selected ? this.model.get(this.selected) : null;
    if (now && signature(now) !== beforeSig) {
      const top = this.details.scrollTop;
      renderDetails(this, now);
      this.details.scrollTop = top;
    }
    this.timings.updates = (this.timings.updates || 0) + 1;
    clearTimeout(this.freshTimer);
    this.freshTimer = setTimeout(() => { this.fresh = new Set(); this.tree.restyle(); }, 2500);
  }
}

const APP_DATA = JSON.parse(document.getElementById("trex-data").textContent);
const T_PARSED = performance.now();
const app = new App(APP_DATA);
app.timings.parse = T_PARSED - T_START;
window.__trex = {
  timings: app.timings,
  select: id => app.select(id, {reveal: true}),
  rendered: () => app.tree.els.size,
  total: () => app.model.nodes.length,
  seq: () => app.model.data.seq,
};
