"""LangGraph graphs: the planner, the copywriter subgraph and the optimizer."""
