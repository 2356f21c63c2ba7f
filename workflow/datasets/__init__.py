"""Data sets for the workflow: the synthetic merchant credit data and ISLR's Default."""
