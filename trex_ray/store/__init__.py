"""Durable run state: append-only journal + atomic snapshots; resume by replay."""

from trex_ray.store.files import is_remote
from trex_ray.store.journal import JOURNAL, SNAPSHOT, Store, StoreError, read_run, read_task, read_tree
from trex_ray.store.snapshot import tree_from_dict, tree_to_dict

__all__ = ["JOURNAL", "SNAPSHOT", "Store", "StoreError", "is_remote", "read_run", "read_task", "read_tree",
           "tree_from_dict", "tree_to_dict"]
