"""Reports of a run: JSON summary, text leaderboard."""

from trex_ray.report.html import render_html, write_html
from trex_ray.report.text import describe, leaderboard, node_record, summary, verdict

__all__ = ["describe", "leaderboard", "node_record", "render_html", "summary", "verdict", "write_html"]
