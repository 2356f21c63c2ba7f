"""The preprocess step as it was before the SQL engine (pandas, everything in memory).

Kept only as the baseline of `bench/prepare_engines.py`, which runs it side by side with the
step and checks that both give the same answer.  The step itself no longer uses it.
"""
