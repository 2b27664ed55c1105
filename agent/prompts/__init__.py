"""Versioned prompt files (Markdown with front matter), loaded by ``agent.models.prompts.load_prompt``."""
