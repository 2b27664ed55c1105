"""The DuckDB warehouse: schema, connection helpers and the demo world generator."""
