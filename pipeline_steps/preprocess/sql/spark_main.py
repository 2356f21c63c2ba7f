"""The Preprocess step on Spark (placeholder while the engine is written)."""
