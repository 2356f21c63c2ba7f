"""The plan's executor on Spark: the same statements as the embedded engine, in Spark SQL.

The orchestration (`prepare.py`) talks to an engine through `functions`, `read_table`, `view`,
`table`, `rows`, `columns` and `write_all`; this class gives Spark's answer to each:

- reading: every input file with its index in the sorted input list (`_file`), its 1-based row
  number (`_row`; Parquet: Spark's `_metadata.row_index`; CSV: the row's place in the file,
  numbered in file order) and its name (`_source_file`), as the embedded engine does;
- statements: each of the plan's statements transpiled from DuckDB's dialect
  (`spark_dialect.to_spark`); views and tables are computed once and kept (memory, then disk);
- hashing: `xxhash64` where DuckDB's `hash` is used (64 bits: duplicate-key candidates), the
  seeded split order stays `md5` (the same order on both engines);
- writing: one Parquet file per output, named as the embedded engine names it; Spark writes
  to a staging folder (the cluster's HDFS on SageMaker, a local folder in local mode), the
  driver copies the file into place under a temporary name and renames it; the outputs are
  written side by side, one job each.

Nothing here imports pyarrow or DuckDB: AWS's Spark image has neither.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline_steps.preprocess.sql.checks import check_input_files
from pipeline_steps.preprocess.sql.plan import Functions
from pipeline_steps.preprocess_spark.spark_dialect import to_spark

# The tokens the embedded engine reads as null from CSV (files.NULL_TOKENS; exact matches).
CSV_NULL_TOKENS = ("", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None")
SPARK_FUNCTIONS = Functions(
    hash=lambda exprs: f"xxhash64({', '.join(exprs)})",
    shard=lambda expr, n: f"CAST(pmod(xxhash64({expr}), {n}) AS INTEGER)",
    prefilter=False,
    ordered_tables=False,
)


def _kind(spark_type: Any) -> str:
    """A Spark column type as the plan's raw kinds (text, integer, float, boolean, date)."""
    from pyspark.sql import types as t

    if isinstance(spark_type, (t.ByteType, t.ShortType, t.IntegerType, t.LongType)):
        return "integer"
    if isinstance(spark_type, (t.FloatType, t.DoubleType, t.DecimalType)):
        return "float"
    if isinstance(spark_type, t.BooleanType):
        return "boolean"
    if isinstance(spark_type, (t.DateType, t.TimestampType, t.TimestampNTZType)):
        return "date"
    if isinstance(spark_type, t.StringType):
        return "text"
    return "other"


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith((".parquet", ".pq"))


def csv_header(path: Path) -> list[str]:
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="") as handle:
        return next(csv.reader(handle), [])


class SparkEngine:
    """The plan's statements on one SparkSession (local mode, or the job's YARN cluster).

    `staging`: where Spark writes before the driver copies into place (a Hadoop URI such as
    `hdfs:///preprocess-staging`); None: a folder under `scratch`."""

    functions = SPARK_FUNCTIONS
    name = "spark"

    def __init__(self, spark: Any, scratch: Path, staging: str | None = None) -> None:
        scratch.mkdir(parents=True, exist_ok=True)
        self.spark = spark
        self.scratch = scratch
        self.staging = (staging or scratch.resolve().as_uri()).rstrip("/")
        self._kept: dict[str, Any] = {}
        self._count = itertools.count()

    def close(self) -> None:
        for frame in self._kept.values():
            frame.unpersist()
        self._kept.clear()

    def _df(self, sql: str) -> Any:
        try:
            spark_sql = to_spark(sql)
        except Exception as err:  # a plan statement sqlglot cannot read is a bug of the plan
            raise RuntimeError(
                f"cannot transpile the plan's statement to Spark SQL: {err}: {sql[:200]}"
            ) from err
        return self.spark.sql(spark_sql)

    # ---- input ---------------------------------------------------------------------------
    def _columns(self, path: Path) -> list[str]:
        if _is_parquet(path):
            return list(self.spark.read.parquet(str(path)).columns)
        return csv_header(path)

    def _read_file(self, path: Path) -> Any:
        """One file's columns with `_row` (1-based, in file order)."""
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        if _is_parquet(path):
            frame = self.spark.read.parquet(str(path))
            return frame.select(*frame.columns, (F.col("_metadata.row_index") + 1).alias("_row"))
        header = csv_header(path)
        schema = T.StructType([T.StructField(name, T.StringType()) for name in header])
        frame = (
            self.spark.read.schema(schema)
            .option("header", True)
            .option("quote", '"')
            .option("escape", '"')  # RFC 4180 doubled quotes, as the embedded engine reads them
            .option("mode", "FAILFAST")
            .option("nullValue", "\u0000")  # no token is null here: the same tokens as embedded, below
            .csv(str(path))
        )
        frame = frame.select(
            *(
                F.when(F.col(c).isin(list(CSV_NULL_TOKENS)) | F.col(c).isNull(), None)
                .otherwise(F.col(c))
                .alias(c)
                for c in header
            )
        )
        # Row numbers in file order, on the JVM (no Python workers): the scan's partitions are the
        # file's splits in order, and monotonically_increasing_id grows within and across them.
        from pyspark.sql.window import Window

        order = Window.orderBy("_scan_order")
        numbered = frame.withColumn("_scan_order", F.monotonically_increasing_id())
        return numbered.withColumn("_row", F.row_number().over(order).cast("long")).drop("_scan_order")

    def read_table(self, table: str, paths: Sequence[Path], expected: Sequence[str]) -> dict[str, str]:
        """Creates `<table>_raw` over every file; returns each column's kind.  A file with a missing
        or extra column stops the run (the same messages as the embedded engine)."""
        from pyspark.sql import functions as F

        check_input_files(table, paths, expected, self._columns)
        frames = [self._read_file(Path(p)) for p in paths]
        kinds_per_file = [{f.name: _kind(f.dataType) for f in frame.schema.fields} for frame in frames]
        # A column stored differently in different files is read as text everywhere.
        mixed = {c for c in expected if len({k.get(c) for k in kinds_per_file}) > 1}
        kinds = {c: ("text" if c in mixed else kinds_per_file[0][c]) for c in expected}
        as_text = mixed | {c for c, k in kinds.items() if k == "other"}
        kinds.update(dict.fromkeys(as_text, "text"))
        parts = []
        for index, (path, frame) in enumerate(zip(paths, frames, strict=True)):
            parts.append(
                frame.select(
                    *(F.col(c).cast("string").alias(c) if c in as_text else F.col(c) for c in expected),
                    F.lit(index).alias("_file"),
                    F.col("_row").cast("long").alias("_row"),
                    F.lit(Path(path).name).alias("_source_file"),
                )
            )
        union = parts[0]
        for part in parts[1:]:
            union = union.unionByName(part)
        union.createOrReplaceTempView(f"{table}_raw")
        return kinds

    # ---- statements ----------------------------------------------------------------------
    def view(self, name: str, sql: str) -> None:
        """Kept once computed (memory, then disk): the plan queries its views several times, and
        Spark, unlike DuckDB, would compute a plain view again for each query.  Not computed
        here: the queries that read it compute only the columns they need (measured: computing
        every column of `<table>_checked` up front made the test's run several times slower)."""
        from pyspark import StorageLevel

        self._keep(name, self._df(sql).persist(StorageLevel.MEMORY_AND_DISK))

    def _keep(self, name: str, frame: Any) -> None:
        old = self._kept.pop(name, None)
        frame.createOrReplaceTempView(name)
        self._kept[name] = frame
        if old is not None:
            old.unpersist()

    def table(self, name: str, sql: str) -> None:
        """Computed now, kept on the executors (memory, then disk) with its lineage cut: the next
        statements plan against a table, not against every statement before it (measured: keeping
        the lineage made the test's run 3x slower)."""
        self._keep(name, self._df(sql).localCheckpoint(eager=True))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._df(sql).collect()]

    def columns(self, sql: str) -> list[str]:
        return list(self._df(sql).columns)

    def read_parquet(self, path: Path) -> Any:
        """A written output as a pandas frame (for the baseline), read by Spark: no pyarrow."""
        import warnings

        with warnings.catch_warnings():  # PySpark 3.5 passes pandas 3 a deprecated `copy=` keyword
            warnings.filterwarnings("ignore", module=r"pyspark\..*")
            return self.spark.read.parquet(Path(path).resolve().as_uri()).toPandas()

    # ---- output --------------------------------------------------------------------------
    def write_parquet(self, sql: str, path: Path) -> None:
        """The query's rows, in its order, to one Parquet file at `path` (atomically)."""
        stage = f"{self.staging}/{next(self._count):04d}-{uuid.uuid4().hex[:8]}"
        # One writer keeps the query's order in one file (coalesce merges the sorted partitions in order).
        self._df(sql).coalesce(1).write.mode("overwrite").parquet(stage)
        self._copy_out(stage, Path(path))

    def write_all(
        self, outputs: Sequence[tuple[str, Path]], on_written: Callable[[Path], None] | None = None
    ) -> None:
        """Every output, side by side: one Spark job per file from its own driver thread (each file is
        one task, to keep its order), so the cluster writes several files at once.  `on_written(path)`
        runs in that thread as soon as the file is in place."""
        from concurrent.futures import ThreadPoolExecutor

        def write(sql: str, path: Path) -> None:
            self.write_parquet(sql, path)
            if on_written is not None:
                on_written(path)

        with ThreadPoolExecutor(max_workers=max(1, min(len(outputs), 4))) as pool:
            for done in [pool.submit(write, sql, path) for sql, path in outputs]:
                done.result()

    def _copy_out(self, stage: str, path: Path) -> None:
        jvm = self.spark.sparkContext._jvm
        conf = self.spark.sparkContext._jsc.hadoopConfiguration()
        source = jvm.org.apache.hadoop.fs.Path(stage)
        fs = source.getFileSystem(conf)
        parts = sorted(
            str(s.getPath().toString())
            for s in fs.listStatus(source)
            if s.getPath().getName().startswith("part-") and s.getPath().getName().endswith(".parquet")
        )
        if len(parts) != 1:
            raise RuntimeError(f"expected one Parquet part in {stage}, found {len(parts)}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        # useRawLocalFileSystem: no .crc file beside the copy.
        fs.copyToLocalFile(
            False, jvm.org.apache.hadoop.fs.Path(parts[0]), jvm.org.apache.hadoop.fs.Path(str(tmp)), True
        )
        os.replace(tmp, path)
        fs.delete(source, True)
