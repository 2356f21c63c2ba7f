"""The preparation plan as SQL (engine-neutral) and its DuckDB executor."""
