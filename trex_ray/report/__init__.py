"""Reports of a run: JSON summary, text leaderboard."""

from trex_ray.report.text import describe, leaderboard, node_record, summary

__all__ = ["describe", "leaderboard", "node_record", "summary"]
