/* trex tree explorer — panels: SVG line plots, node details, leaderboard, compute plot, legend.
 * Every piece of run data is set with textContent (through h() / s()), never as markup. */

// --- plots --------------------------------------------------------------------------------
function niceTicks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * mag).find(st => (hi - lo) / st <= count) || mag * 10;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

/** A small SVG line plot. series: [{name, cls, points: [[x, y|null], ...], dashed, step}]. */
function linePlot(o) {
  const W = o.width || 380, H = o.height || 200, m = {l: 48, r: 12, t: 22, b: 34};
  const pts = o.series.flatMap(se => se.points).filter(p => p[1] !== null && Number.isFinite(p[1]));
  const svg = s("svg", {class: "plot " + (o.cls || ""), viewBox: `0 0 ${W} ${H}`, width: W, height: H,
    role: "img", "aria-label": o.title || "plot"});
  if (!pts.length && !(o.marks || []).length) {
    svg.append(s("text", {class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle", text: o.empty || "no data"}));
    return svg;
  }
  const xs = pts.map(p => p[0]).concat((o.marks || []).map(mk => mk.x));
  let x0 = o.xDomain ? o.xDomain[0] : Math.min(...xs), x1 = o.xDomain ? o.xDomain[1] : Math.max(...xs);
  if (!(x1 > x0)) x1 = x0 + 1;
  let y0 = pts.length ? Math.min(...pts.map(p => p[1])) : 0, y1 = pts.length ? Math.max(...pts.map(p => p[1])) : 1;
  const pad = (y1 - y0) * 0.08 || Math.abs(y1) * 0.1 || 0.5;
  y0 -= pad; y1 += pad;
  const X = x => m.l + (x - x0) / (x1 - x0) * (W - m.l - m.r);
  const Y = y => H - m.b - (y - y0) / (y1 - y0) * (H - m.t - m.b);
  const axes = s("g", {class: "axes"});
  for (const t of niceTicks(y0, y1, 4)) {
    axes.append(s("line", {class: "grid", x1: m.l, x2: W - m.r, y1: Y(t), y2: Y(t)}),
      s("text", {class: "tick", x: m.l - 5, y: Y(t) + 3, "text-anchor": "end", text: (o.yFmt || String)(t)}));
  }
  for (const t of niceTicks(x0, x1, 5)) {
    axes.append(s("line", {class: "grid", x1: X(t), x2: X(t), y1: m.t, y2: H - m.b}),
      s("text", {class: "tick", x: X(t), y: H - m.b + 13, "text-anchor": "middle", text: (o.xFmt || String)(t)}));
  }
  axes.append(s("text", {class: "axis-label", x: (W + m.l) / 2, y: H - 4, "text-anchor": "middle", text: o.xLabel || ""}),
    s("text", {class: "axis-label", x: 12, y: (H - m.b + m.t) / 2, "text-anchor": "middle",
      transform: `rotate(-90 12 ${(H - m.b + m.t) / 2})`, text: o.yLabel || ""}));
  svg.append(axes);
  o.series.forEach((se, i) => {
    let d = "", pen = false, last = null;
    for (const [x, y] of se.points) {
      if (y === null || !Number.isFinite(y)) { pen = false; continue; }
      if (se.step && pen && last !== null) d += `H${X(x).toFixed(1)}`;
      d += `${pen ? "L" : "M"}${X(x).toFixed(1)},${Y(y).toFixed(1)}`;
      pen = true; last = y;
    }
    if (se.stepTo !== undefined && last !== null) d += `H${X(se.stepTo).toFixed(1)}`;
    if (se.scatter) {
      const dots = se.points.filter(p => p[1] !== null).map(p => `M${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}h0`);
      svg.append(s("path", {class: "scatter " + se.cls, d: dots.join("")}));
    } else if (d) {
      svg.append(s("path", {class: "series " + se.cls + (se.dashed ? " dashed" : ""), d}));
      for (const [x, y] of se.points) {
        if (y !== null && Number.isFinite(y) && se.points.length <= 40 && !se.step) {
          svg.append(s("circle", {class: "pt " + se.cls, cx: X(x), cy: Y(y), r: 2.5}));
        }
      }
    }
    svg.append(s("g", {class: "legend-item", transform: `translate(${m.l + 6 + i * 118},${12})`},
      s("line", {class: "series " + se.cls + (se.dashed ? " dashed" : ""), x1: 0, x2: 16, y1: 0, y2: 0}),
      s("text", {x: 20, y: 3.5, text: se.name})));
  });
  for (const mk of o.marks || []) {
    svg.append(s("g", {class: "mark " + (mk.cls || ""), transform: `translate(${X(mk.x)},${m.t + 6})`},
      s("path", {d: "M-4,-4L4,4M4,-4L-4,4"}), s("text", {x: 6, y: 4, text: mk.label})));
  }
  for (const p of o.points || []) {
    const c = s("circle", {class: "hit " + (p.cls || ""), cx: X(p.x), cy: Y(p.y), r: 4, "data-node-id": p.id},
      s("title", {text: p.title || p.id}));
    svg.append(c);
  }
  return svg;
}

// --- node details -------------------------------------------------------------------------
function section(title, ...body) {
  return h("section", {class: "sec"}, h("h3", {text: title}), ...body);
}
function kv(rows) {
  return h("table", {class: "kv"}, rows.filter(r => r[1] !== null && r[1] !== undefined && r[1] !== "")
    .map(([k, v]) => h("tr", null, h("th", {text: k}), h("td", {text: v}))));
}
function statusChip(status) { return h("span", {class: "chip st-" + status, text: status}); }
function nodeLink(app, id, text) {
  return h("button", {class: "link", type: "button", "data-node-id": id, text: text || id,
    on: {click: () => app.select(id, {reveal: true})}});
}

/** Rows of the plan diff: [key, parent value, value, kind] with kind changed|added|removed|same. */
function planDiff(parentPlan, plan) {
  const keys = Object.keys(parentPlan || {});
  for (const k of Object.keys(plan)) if (!keys.includes(k)) keys.push(k);
  return keys.map(k => {
    const a = parentPlan ? parentPlan[k] : undefined, b = plan[k];
    const kind = !parentPlan ? "same" : a === undefined ? "added" : b === undefined ? "removed"
      : JSON.stringify(a) === JSON.stringify(b) ? "same" : "changed";
    return [k, a, b, kind];
  });
}

function planSection(app, n, parent) {
  const rows = planDiff(parent ? parent.plan : null, n.plan);
  const row = r => h("tr", {class: "d-" + r[3]}, h("th", {text: r[0]}),
    parent ? h("td", {class: "old", text: r[1] === undefined ? "" : fmtValue(r[1])}) : null,
    h("td", {class: "new", text: r[2] === undefined ? "" : fmtValue(r[2])}));
  const head = h("tr", null, h("th", {text: "field"}), parent ? h("th", {text: parent.id}) : null, h("th", {text: n.id}));
  const changed = rows.filter(r => r[3] !== "same"), same = rows.filter(r => r[3] === "same");
  const title = parent ? `Plan — diff against parent ${parent.id}` : "Plan";
  const body = [];
  if (parent) {
    body.push(h("div", {class: "changes"}, n.changes.length
      ? n.changes.map(c => h("span", {class: "change", text: c})) : h("span", {class: "muted", text: "same plan"})));
    if (changed.length) body.push(h("table", {class: "diff"}, head, changed.map(row)));
    body.push(h("details", null, h("summary", {text: `${same.length} unchanged fields`}),
      h("table", {class: "diff"}, head.cloneNode(true), same.map(row))));
  } else {
    body.push(h("table", {class: "diff"}, head, rows.map(row)));
  }
  return section(title, ...body);
}

function curveSection(n, parent) {
  const rows = n.curve || [];
  const series = [
    {name: "train loss", cls: "train", points: rows.map(r => [r[0], r[2]])},
    {name: "val loss", cls: "val", points: rows.map(r => [r[0], r[3]])},
  ];
  if (parent && parent.curve && parent.curve.length) {
    series.push({name: `${parent.id} val`, cls: "parent", dashed: true, points: parent.curve.map(r => [r[0], r[3]])});
  }
  const marks = rows.filter(r => r[2] === null).map(r => ({x: r[0], label: "NaN", cls: "nan"}));
  return section("Loss curves", linePlot({series, marks, width: 400, height: 190, xDomain: [0, 1],
    xLabel: "fraction of training", yLabel: "loss", title: `loss curves of ${n.id}`,
    xFmt: t => Math.round(t * 100) + "%", yFmt: t => t.toFixed(2), empty: "no progress reported yet"}));
}

function samplesSection(n) {
  if (!n.samples || !n.samples.length) return null;
  const rows = n.samples.map(smp => {
    const ok = smp.prediction !== undefined && smp.target !== undefined
      && String(smp.prediction).trim() === String(smp.target).trim();
    return h("tr", {class: ok ? "ok" : "bad"},
      h("td", {class: "mark", text: ok ? "✓" : "✗"}),
      h("td", {class: "prompt", text: smp.prompt ?? ""}),
      h("td", {class: "pred", text: smp.prediction ?? ""}),
      h("td", {class: "target", text: smp.target ?? ""}));
  });
  return section(`Sample predictions (${n.samples.length})`, h("table", {class: "samples"},
    h("tr", null, h("th"), h("th", {text: "prompt"}), h("th", {text: "prediction"}), h("th", {text: "target"})), rows));
}

function renderDetails(app, n) {
  const box = app.details, model = app.model;
  if (!n) {
    box.replaceChildren(h("div", {class: "placeholder"}, h("p", {text: "Click a node to see its plan, curves and results."}),
      h("p", {class: "muted", text: "Drag to pan · wheel to zoom · double-click or ± to collapse · ←↑↓→ to walk the tree"})));
    return;
  }
  const parent = model.parentOf(n);
  const head = h("div", {class: "d-head"},
    h("div", {class: "d-title"}, h("span", {class: "d-id", text: n.id}), statusChip(n.status),
      n.id === model.bestId ? h("span", {class: "chip best", text: "★ best"}) : null),
    h("div", {class: "d-metric"}, h("span", {class: "big", text: fmtMetric(n.metric)}),
      h("span", {class: "muted", text: " validation " + (model.data.task.metric || "metric")}),
      n.test_metric !== null && n.test_metric !== undefined
        ? h("span", {class: "stat", text: ` · test ${fmtMetric(n.test_metric)}`}) : null,
      parent && parent.metric !== null && n.metric !== null
        ? h("span", {class: "delta", text: ` ${fmtDelta(n.metric - parent.metric)} vs ${parent.id}`}) : null,
      model.base !== null && n.metric !== null && n.parent !== null
        ? h("span", {class: "delta", text: ` ${fmtDelta(n.metric - model.base)} vs base`}) : null),
    h("div", {class: "d-label", text: n.label || ""}));
  const path = model.ancestors(n).reverse();
  const crumbs = h("div", {class: "crumbs"}, path.map(p => [nodeLink(app, p.id), " › "]), h("b", {text: n.id}));
  const blocks = [head, crumbs];
  if (n.failure || n.error || n.prune_reason) {
    blocks.push(section("Why it ended", kv([["failure", n.failure], ["pruned", n.prune_reason]]),
      n.error ? h("pre", {class: "error", text: n.error}) : null));
  }
  if (n.rationale) blocks.push(section("Rationale", h("p", {class: "text", text: n.rationale})));
  if (n.insight) blocks.push(section("Insight", h("p", {class: "text insight", text: n.insight})));
  blocks.push(curveSection(n, parent));
  blocks.push(planSection(app, n, parent));
  const metrics = Object.entries(n.metrics || {});
  if (metrics.length) {
    blocks.push(section("Metrics", h("div", {class: "metrics"}, metrics.map(([k, v]) =>
      h("span", {class: "metric"}, h("span", {class: "muted", text: k + " "}), h("b", {text: fmtMetric(v)}))))));
  }
  const samples = samplesSection(n);
  if (samples) blocks.push(samples);
  const c = n.cost || {};
  blocks.push(section("Cost", kv([
    ["compute", n.cost ? fmtSeconds(c.compute_seconds) : null], ["wall", n.cost ? fmtSeconds(c.wall_seconds) : null],
    ["train steps", c.train_steps], ["train tokens", c.train_tokens], ["attempts", n.attempts],
    ["started", fmtTime(n.started_at)], ["finished", fmtTime(n.finished_at)],
    ["eval backend", n.eval_backend], ["checkpoint", n.checkpoint]])));
  if (n.log) blocks.push(section("Log tail", h("pre", {class: "log", text: n.log})));
  if (n.kids.length) {
    blocks.push(section(`Children (${n.kids.length})`, h("div", {class: "kids"}, n.kids.map(k =>
      h("span", {class: "kid"}, nodeLink(app, k.id), statusChip(k.status), h("span", {text: " " + fmtMetric(k.metric)}))))));
  }
  box.replaceChildren(...blocks);
}

// --- leaderboard and compute plot --------------------------------------------------------
function renderLeaderboard(app, box, top) {
  const model = app.model, sign = model.higher ? -1 : 1;
  const ranked = model.nodes.filter(n => n.metric !== null && !app.isDimmed(n))
    .sort((a, b) => sign * (a.metric - b.metric) || idNum(a.id) - idNum(b.id));
  const rows = ranked.slice(0, top).map((n, i) => h("tr", {"data-node-id": n.id,
    class: (n.id === app.selected ? "selected " : "") + (model.best.has(n.id) ? "on-best" : "")},
  h("td", {class: "num", text: i + 1}), h("td", {class: "nid", text: n.id}), h("td", null, statusChip(n.status)),
  h("td", {class: "num", text: fmtMetric(n.metric)}),
  h("td", {class: "num delta", text: model.base !== null ? fmtDelta(n.metric - model.base) : ""}),
  h("td", {class: "plan", text: clip(n.label || "", 34), title: n.label || ""})));
  const table = h("table", {class: "board"}, h("tr", null, ["#", "node", "status", model.data.task.metric, "vs base", "plan"]
    .map(t => h("th", {text: t}))), rows);
  table.addEventListener("click", e => {
    const tr = e.target.closest("tr[data-node-id]");
    if (tr) app.select(tr.getAttribute("data-node-id"), {reveal: true});
  });
  box.replaceChildren(h("h3", {text: `Leaderboard — ${ranked.length} scored`}), table);
}

function renderCompute(app, box) {
  const model = app.model, pts = model.data.compute || [];
  const total = pts.length ? pts[pts.length - 1][0] : 0;
  const [div, unit] = secondsUnit(total);
  const scatter = pts.map(p => [p[0] / div, model.get(p[2]) ? model.get(p[2]).metric : null]);
  const improvements = [];
  let last = null;
  for (const [x, y, id] of pts) {
    if (y !== null && y !== last) {
      improvements.push({x: x / div, y, id, cls: "improve", title: `${id}: ${fmtMetric(y)} after ${fmtSeconds(x)}`});
      last = y;
    }
  }
  const plot = linePlot({width: 430, height: 210, title: "best score vs cumulative compute",
    series: [{name: "best so far", cls: "best", step: true, stepTo: total / div, points: pts.map(p => [p[0] / div, p[1]])},
      {name: "each node", cls: "each", scatter: true, points: scatter}],
    points: improvements, xLabel: `cumulative compute (${unit})`, yLabel: model.data.task.metric,
    yFmt: t => t.toFixed(2), empty: "no node has finished yet"});
  plot.addEventListener("click", e => {
    const hit = e.target.closest("[data-node-id]");
    if (hit) app.select(hit.getAttribute("data-node-id"), {reveal: true});
  });
  box.replaceChildren(h("h3", {text: "Best score vs compute"}), plot);
}
/** The unit to show a number of seconds in, chosen from the largest value: [divisor, name]. */
function secondsUnit(max) {
  return max < 300 ? [1, "s"] : max < 3 * 3600 ? [60, "min"] : [3600, "h"];
}

// --- legend and status filters -----------------------------------------------------------
function renderLegend(app, box) {
  const model = app.model, counts = model.data.counts || {};
  const items = STATUSES.map(st => {
    const cb = h("input", {type: "checkbox", "data-status": st});
    cb.checked = !app.hidden.has(st);
    cb.addEventListener("change", () => app.setFilter(st, cb.checked));
    return h("label", {class: "flt st-" + st}, cb, h("span", {class: "swatch"}), h("span", {text: ` ${st} `}),
      h("span", {class: "count", text: counts[st] || 0}));
  });
  const lo = model.higher ? model.lo : model.hi, hi = model.higher ? model.hi : model.lo;
  const grad = h("div", {class: "gradient"}, h("span", {text: fmtMetric(lo)}), h("span", {class: "bar"}),
    h("span", {text: fmtMetric(hi)}));
  box.replaceChildren(h("div", {class: "legend-title", text: "status filter"}), ...items,
    h("div", {class: "legend-title", text: `${model.data.task.metric} (colour)`}), grad,
    h("div", {class: "legend-best"}, h("span", {class: "best-line"}), h("span", {text: " best path"})));
}
