"""What the LLM is reminded of, within a token budget: insights, findings, and the tree so far.

The memory is the tree's insight records (journaled events, so it survives a resume) plus the
research findings. Each prompt gets the most relevant part that fits its budget: insights
about the node being expanded and its ancestors and children first, then failures (what to
avoid), then the largest effects, then the rest, newest first. Example::

    render_insights(tree, node, budget_tokens=400)
    render_findings(findings, budget_tokens=400)
    render_tree(tree, node)
"""

from __future__ import annotations

from typing import Any

from trex_ray.research.llm.ledger import approx_tokens
from trex_ray.research.llm.tools import Finding
from trex_ray.spec.plan_text import describe_plan
from trex_ray.tree import Node, SearchTree

MAX_TREE_LINES = 30
_FAILURE_KINDS = {"diverged", "error", "timeout", "lost", "stopped"}


def _fit(lines: list[str], budget_tokens: int) -> list[str]:
    out, used = [], 0
    for line in lines:
        cost = approx_tokens(line) + 1
        if used + cost > budget_tokens:
            break
        out.append(line)
        used += cost
    return out


def _insight_priority(record: dict[str, Any], near: set[str]) -> float:
    facts = record.get("facts") or {}
    if record.get("node_id") in near:
        return 0.0
    if facts.get("kind") in _FAILURE_KINDS:
        return 1.0
    if facts.get("kind") == "delta":
        return 2.0 - min(0.99, abs(float(facts.get("delta") or 0.0)) * 10)
    return 3.0


def render_insights(tree: SearchTree, node: Node | None, budget_tokens: int) -> str:
    """Insight lines most relevant to expanding ``node``, cut to ``budget_tokens``."""
    near: set[str] = set()
    if node is not None:
        near = {node.id, *node.children, *(a.id for a in tree.ancestors(node))}
    ranked = sorted(enumerate(tree.insights), key=lambda p: (_insight_priority(p[1], near), -p[0]))
    lines = [f"- {r.get('node_id') or '?'}: {r.get('text', '')}" for _, r in ranked]
    return "\n".join(_fit(lines, budget_tokens)) or "(none yet)"


def render_findings(findings: list[Finding], budget_tokens: int) -> str:
    lines = [f"[{f.id}] {f.title} ({f.source}) — {f.snippet}" for f in findings]
    return "\n".join(_fit(lines, budget_tokens)) or "(none)"


def node_line(node: Node, metric_name: str) -> str:
    status = node.status.value
    score = f" {metric_name}={node.metric:.4f}" if node.metric is not None else ""
    failure = f" ({node.result.failure.value})" if node.result and node.result.failure else ""
    why = node.plan.rationale[:100]
    plan = describe_plan(node.plan)
    return f"{node.id} (parent {node.parent or '-'}) {status}{failure}{score} | {plan} | {why}"


def render_tree(tree: SearchTree, node: Node, metric_name: str) -> str:
    """The nodes that matter for expanding ``node``: its path, its children, the best, then the rest."""
    path = [*reversed(tree.ancestors(node)), node]
    best = sorted((n for n in tree if n.metric is not None), key=lambda n: n.metric or 0.0, reverse=True)
    order: list[Node] = []
    for n in [*path, *tree.children(node), *best[:5], *tree]:
        if n not in order:
            order.append(n)
    lines = [node_line(n, metric_name) for n in order[:MAX_TREE_LINES]]
    if len(order) > MAX_TREE_LINES:
        lines.append(f"... and {len(order) - MAX_TREE_LINES} more nodes")
    return "\n".join(lines)
