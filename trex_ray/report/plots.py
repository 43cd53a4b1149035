"""PNG plots of a run (matplotlib, Agg backend) for READMEs and benchmark results.

``write_pngs(run_dir, out_dir)`` writes:

* ``best_vs_compute.png`` — best metric so far against cumulative compute, every node's score
  as a dot, the base model as a dashed line;
* ``loss_curves.png`` — train/validation loss of the best path and the top nodes, one panel each;
* ``curve_<id>.png`` — one node's curves against its parent's, for each node of the best path.

Example::

    paths = write_pngs("runs/demo", "docs/demo-plots")
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from trex_ray.report.explorer_data import best_vs_compute
from trex_ray.report.text import describe
from trex_ray.store import read_tree
from trex_ray.tree import Node, SearchTree

BEST = "#e0307a"
TRAIN = "#2563eb"
VAL = "#f97316"
PARENT = "#9ca3af"
MAX_PANELS = 12


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display; also safe under Ray workers and CI
    import matplotlib.pyplot as plt

    return plt


def _unit(seconds: float) -> tuple[float, str]:
    return (1.0, "s") if seconds < 300 else (60.0, "min") if seconds < 3 * 3600 else (3600.0, "h")


def _metric_name(tree: SearchTree) -> str:
    return ((tree.meta.get("task") or {}).get("metric") or {}).get("name", "metric")


def _style(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, color="#eceef2", linewidth=0.8)
    ax.set_axisbelow(True)


def plot_best_vs_compute(tree: SearchTree, path: Path) -> Path:
    plt = _pyplot()
    points = best_vs_compute(tree)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=150)
    _style(ax)
    metric = _metric_name(tree)
    if points:
        div, unit = _unit(points[-1][0])
        xs = [c / div for c, _, _ in points]
        scored = [(c / div, tree.nodes[i].metric) for c, _, i in points if tree.nodes[i].metric is not None]
        ax.scatter([x for x, _ in scored], [m for _, m in scored], s=14, color="#21918c", alpha=0.35,
                   label="each node", linewidths=0)
        best = [(x, b) for x, (_, b, _) in zip(xs, points, strict=True) if b is not None]
        if best:
            bx, by = zip(*best, strict=True)
            ax.step([*bx, xs[-1]], [*by, by[-1]], where="post", color=BEST, linewidth=2.2,
                    label="best so far")
        last = None
        for x, (_, b, node_id) in zip(xs, points, strict=True):
            if b is not None and b != last and tree.nodes[node_id].metric == b:
                ax.annotate(node_id, (x, b), textcoords="offset points", xytext=(3, 5), fontsize=7,
                            color=BEST)
                ax.plot([x], [b], "o", color=BEST, markersize=4)
                last = b
        root = tree.root
        if root is not None and root.metric is not None:
            ax.axhline(root.metric, color=PARENT, linestyle="--", linewidth=1, label="base model")
        ax.set_xlabel(f"cumulative compute ({unit})")
        ax.legend(frameon=False, fontsize=8, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no node has finished yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel(metric)
    ax.set_title(f"best {metric} vs compute — {tree.meta.get('run_id', '')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _curve_xy(node: Node, which: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for p in node.progress or (node.result.curve if node.result else []):
        y = p.train_loss if which == "train" else p.val_loss
        if y is not None and math.isfinite(y):
            xs.append(p.fraction)
            ys.append(y)
    return xs, ys


def _diverged_at(node: Node) -> float | None:
    for p in node.progress or (node.result.curve if node.result else []):
        if not math.isfinite(p.train_loss):
            return p.fraction
    return None


def _draw_curves(ax: Any, node: Node, parent: Node | None, title: str) -> None:
    _style(ax)
    for which, color in (("train", TRAIN), ("val", VAL)):
        xs, ys = _curve_xy(node, which)
        if xs:
            ax.plot(xs, ys, "-o", color=color, markersize=3, linewidth=1.6, label=f"{which} loss")
    if parent is not None:
        xs, ys = _curve_xy(parent, "val")
        if xs:
            ax.plot(xs, ys, "--", color=PARENT, linewidth=1.2, label=f"{parent.id} val")
    at = _diverged_at(node)
    if at is not None:
        ax.axvline(at, color="#d62839", linewidth=1)
        ax.text(at, 0.95, " NaN", color="#d62839", fontsize=7, transform=ax.get_xaxis_transform(), va="top")
    ax.set_xlim(0, 1.02)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)


def _panel_nodes(tree: SearchTree) -> list[Node]:
    """The best path, then the best other nodes, that have a curve."""
    with_curve = [n for n in tree if n.progress or (n.result and n.result.curve)]
    path = [n for n in tree.best_path() if n in with_curve]
    rest = sorted((n for n in with_curve if n not in path), key=lambda n: -(n.metric or -1.0))
    return (path + rest)[:MAX_PANELS]


def _title(node: Node) -> str:
    score = f"{node.metric:.4f}" if node.metric is not None else node.status.value
    return f"{node.id} · {score}\n{describe(node)[:38]}"


def plot_loss_curves(tree: SearchTree, path: Path) -> Path:
    plt = _pyplot()
    nodes = _panel_nodes(tree)
    cols = min(4, max(1, len(nodes)))
    rows = max(1, math.ceil(len(nodes) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows), dpi=130, squeeze=False)
    for ax in axes.flat[len(nodes):]:
        ax.axis("off")
    for ax, node in zip(axes.flat, nodes, strict=False):
        parent = tree.nodes.get(node.parent) if node.parent else None
        _draw_curves(ax, node, parent, _title(node))
    if nodes:
        axes.flat[0].legend(frameon=False, fontsize=7)
    else:
        axes.flat[0].text(0.5, 0.5, "no curves reported yet", ha="center", va="center")
    fig.suptitle(f"loss curves — best path first ({tree.meta.get('run_id', '')})", fontsize=10)
    fig.supxlabel("fraction of training", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_node_curve(tree: SearchTree, node: Node, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=150)
    parent = tree.nodes.get(node.parent) if node.parent else None
    _draw_curves(ax, node, parent, _title(node).replace("\n", " — "))
    ax.set_xlabel("fraction of training", fontsize=8)
    ax.set_ylabel("loss", fontsize=8)
    ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_pngs(run_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write the run's PNG plots into ``out_dir``; returns their paths."""
    tree = read_tree(run_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_best_vs_compute(tree, out / "best_vs_compute.png"),
             plot_loss_curves(tree, out / "loss_curves.png")]
    for node in tree.best_path():
        if node.progress or (node.result and node.result.curve):
            paths.append(plot_node_curve(tree, node, out / f"curve_{node.id}.png"))
    return paths
