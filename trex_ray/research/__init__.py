"""The Researcher loop, planners, insight memory and budgets. No Ray."""

from trex_ray.research import heuristic as _heuristic  # noqa: F401  (registers the planner)
from trex_ray.research.budget import BudgetTracker
from trex_ray.research.insights import InsightMemory, distill
from trex_ray.research.llm import planner as _llm  # noqa: F401  (registers "llm"; litellm loads lazily)
from trex_ray.research.planner import Planner, get_planner, planner_names, register_planner
from trex_ray.research.researcher import Researcher
from trex_ray.spec.plan_text import plan_changes  # re-exported: it lives with the plan

__all__ = [
    "BudgetTracker", "InsightMemory", "Planner", "Researcher", "distill", "get_planner",
    "plan_changes", "planner_names", "register_planner",
]
