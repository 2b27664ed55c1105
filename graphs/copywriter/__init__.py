"""The copywriter subgraph: bulk ad copy behind guardrails (issue #7)."""
