"""adpilot: a policy-gated AI agent for Google Ads and Meta ad operations."""

__version__ = "0.1.0"
