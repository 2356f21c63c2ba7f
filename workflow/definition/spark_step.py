"""The Preprocess step on Spark: AWS's Spark processing image, `smspark-submit`, the step code.

One Spark application runs over all the step's instances (the image starts YARN and HDFS
across them and submits from the first).  What the request looks like, and why:

- Image: AWS's Spark processing image for the region, from the SageMaker SDK's own image URI
  config (`spark`, version 3.5, Python 3.12): the same Spark as the pinned `pyspark` the tests
  run in local mode.
- Code: the application file (`pipeline_steps/preprocess_spark/spark_main.py`) and a zip of the
  step code it imports, as processing inputs (CDK uploads both as assets; the local runner
  puts them in its local S3).  `smspark-submit --py-files <folder>` puts every zip of the
  folder on the executors' PYTHONPATH.
- Network isolation stays on: the job makes no AWS call.  Inputs are copied to every instance
  (FullyReplicated: an executor on any host reads any file from its local copy), Spark writes
  its results to the cluster's own HDFS (Spark's commit protocol needs one shared file system)
  and the driver copies them to the output folders on the first instance, which SageMaker
  uploads.  Traffic between the instances (YARN, HDFS, shuffle) stays inside the job's
  security group, encrypted (inter-container traffic encryption).
- Arguments are `--name=value` tokens: smspark-submit joins the command into one shell line,
  so an empty value (AsOfTime) must not be a token of its own.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

from pipeline_steps.common.contract import OPT_ML
from workflow.definition import placeholders as s
from workflow.definition.placeholders import placeholder
from workflow.definition.sdk import SENTINEL_ROLE_ARN

SPARK_VERSION = "3.5"
SPARK_PYTHON = "py312"
SPARK_SUBMIT = "smspark-submit"
# The application smspark-submit runs (also `python -m pipeline_steps.preprocess_spark.spark_main`).
ENTRY_MODULE_FILE = "pipeline_steps/preprocess_spark/spark_main.py"
PROCESSING = f"{OPT_ML}/processing"
ENTRY_DIR = f"{PROCESSING}/input/spark-entry"
CODE_DIR = f"{PROCESSING}/input/spark-code"
# Where the driver stages Spark's output: the cluster's HDFS (the image sets fs.defaultFS).
CLUSTER_STAGING = "hdfs:///preprocess-staging"


def spark_image_uri(region: str) -> str:
    """AWS's Spark processing image for the region, as the SageMaker SDK knows it."""
    from sagemaker.core import image_uris

    return image_uris.retrieve("spark", region, version=SPARK_VERSION, py_version=SPARK_PYTHON)


def spark_repository_arn(region: str, partition: str = "aws") -> str:
    """The ECR repository of that image, read from the same SDK config file without importing
    the SDK (CDK needs it for the job role and the ECR endpoint policy at every synth)."""
    import importlib.util

    found = importlib.util.find_spec("sagemaker")
    if found is None or not found.submodule_search_locations:
        raise ModuleNotFoundError("the sagemaker SDK (requirements.txt) is not installed")
    config_file = Path(found.submodule_search_locations[0]) / "core" / "image_uri_config" / "spark.json"
    version = json.loads(config_file.read_text())["processing"]["versions"][SPARK_VERSION]
    account = version["registries"].get(region)
    if account is None:
        raise ValueError(f"AWS publishes no Spark {SPARK_VERSION} processing image in region {region}")
    return f"arn:{partition}:ecr:{region}:{account}:repository/{version['repository']}"


def app_path() -> str:
    """The application file in the container: its object key is its file name there."""
    return f"{ENTRY_DIR}/{placeholder(s.SPARK_ENTRY_FILE)}"


def spark_processor(parts: Any, instance_type: Any, instance_count: Any) -> Any:
    """A Processor on AWS's Spark image whose entrypoint submits the application."""
    from sagemaker.core.processing import Processor

    settings = parts.settings
    return Processor(
        role=SENTINEL_ROLE_ARN,
        image_uri=spark_image_uri(settings.region),
        instance_type=instance_type,
        instance_count=instance_count,
        entrypoint=[SPARK_SUBMIT, "--py-files", CODE_DIR, app_path()],
        volume_size_in_gb=30,
        volume_kms_key=placeholder(s.KMS_KEY),
        output_kms_key=placeholder(s.KMS_KEY),
        max_runtime_in_seconds=settings.max_runtime_seconds,
        base_job_name="preprocess-spark",
        sagemaker_session=parts.session,
        network_config=parts.network(True),
    )


def object_uri(key_placeholder: str) -> str:
    return f"s3://{placeholder(s.SPARK_CODE_BUCKET)}/{placeholder(key_placeholder)}"


def code_inputs(parts: Any) -> list[Any]:
    """The application file and the code zip, on every instance."""
    return [
        parts.s3_input("spark-entry", object_uri(s.SPARK_ENTRY_FILE), ENTRY_DIR),
        parts.s3_input("spark-code", object_uri(s.SPARK_CODE_FILE), CODE_DIR),
    ]


def as_tokens(arguments: list[Any]) -> list[Any]:
    """`--name value` pairs -> `--name=value` tokens (values may be pipeline variables)."""
    from sagemaker.core.workflow.functions import Join

    tokens: list[Any] = []
    items = iter(arguments)
    for name in items:
        value = next(items)
        joined = f"{name}={value}" if isinstance(value, str) else Join(on="", values=[f"{name}=", value])
        tokens.append(joined)
    return tokens


def code_files(repo_root: Path) -> list[tuple[str, Path]]:
    """(path in the bundle, file) of what the application imports and AWS's image lacks: the
    shared step code, the preprocess step and its Spark engine, and sqlglot (pure Python,
    pinned in requirements.txt).
    The image brings Python, PySpark, pandas and PyYAML; it has neither pyarrow nor DuckDB, so
    nothing on the Spark path imports them."""
    import sqlglot

    steps = repo_root / "pipeline_steps"
    files = [("pipeline_steps/__init__.py", steps / "__init__.py")]
    for folder in ("common", "preprocess", "preprocess_spark"):
        files += [(p.relative_to(repo_root).as_posix(), p) for p in sorted((steps / folder).rglob("*.py"))]
    package = Path(sqlglot.__file__).parent
    files += [(f"sqlglot/{p.relative_to(package).as_posix()}", p) for p in sorted(package.rglob("*.py"))]
    return [(name, path) for name, path in files if "__pycache__" not in name]


def code_digest(repo_root: Path) -> str:
    h = hashlib.sha256()
    for name, path in code_files(repo_root):
        h.update(name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def stage_code(repo_root: Path, folder: Path) -> Path:
    """The bundle as a folder `<folder>/<digest>` (CDK zips it into the code asset)."""
    target = folder / code_digest(repo_root)
    if not target.is_dir():
        tmp = folder / f".{target.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for name, path in code_files(repo_root):
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, tmp / name)
        tmp.replace(target)
    return target


def code_zip(repo_root: Path) -> bytes:
    """The bundle as a byte-stable zip (the local runner's stand-in for the CDK asset)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in code_files(repo_root):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
