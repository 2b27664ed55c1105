"""Typed tools, ad platform adapters and the DuckDB warehouse."""
