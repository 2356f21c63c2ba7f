"""The Preprocess step on Spark: the plan of `pipeline_steps/preprocess/sql/` run by Spark, on AWS's Spark
processing image (not in the preprocess image: it needs neither PySpark nor sqlglot)."""
