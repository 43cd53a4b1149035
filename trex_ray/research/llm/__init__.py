"""The LLM Researcher (``search.planner: llm``): litellm client, prompts, validation, search tools.

Importing this package does not import litellm (that happens at the first call), so
``import trex_ray.research`` stays light. See ``planner.py`` for the stages.
"""
