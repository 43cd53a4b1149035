"""The search tree: plain data changed by events, and the policies that grow and trim it. No Ray, no torch."""

from trex_ray.tree.events import Event, EventKind
from trex_ray.tree.node import Node, NodeStatus
from trex_ray.tree.policy import TreePolicy, UCTPolicy
from trex_ray.tree.tree import ROOT_ID, SearchTree, TreeError

__all__ = [
    "ROOT_ID", "Event", "EventKind", "Node", "NodeStatus", "SearchTree", "TreeError", "TreePolicy",
    "UCTPolicy",
]
