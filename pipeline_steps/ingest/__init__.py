"""Feature Store ingestion: the preprocess step's record files into the feature groups."""
