"""trex_ray: agent-driven tree search for LLM fine-tuning, on Ray."""

__version__ = "0.1.0"
