"""Channel folders of `part-<host>.parquet` files -> float32 model matrix + label vector."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline_steps.common.contract import DataError
from pipeline_steps.common.feature_spec import FeatureSpec
from pipeline_steps.common.splits import read_split_table
from pipeline_steps.common.transform import label_vector, model_matrix

__all__ = ["Split", "load_split"]


@dataclass(frozen=True)
class Split:
    X: np.ndarray  # float32, columns = spec.model_features
    y: np.ndarray  # float32, 1.0 = positive label

    @property
    def rows(self) -> int:
        return int(self.y.shape[0])

    @property
    def positives(self) -> int:
        return int(self.y.sum())


def load_split(
    folder: Path,
    spec: FeatureSpec,
    *,
    channel: str,
    rank: int = 0,
    size: int = 1,
    sharded_by_key: bool = False,
) -> Split:
    """Reads this host's part of a channel.

    ShardedByS3Key: SageMaker already gave this host its own files, so all of them are read.
    Otherwise every host sees every file and takes rows rank::size of the sorted files.
    """
    what = f"{channel} channel"
    table = read_split_table(folder, [spec.label] + spec.model_features, what)
    if size > 1 and not sharded_by_key:
        table = table.take(pa.array(np.arange(rank, table.num_rows, size)))
    if table.num_rows == 0:
        raise DataError(f"{what}: no rows" + (f" for host rank {rank}" if size > 1 else ""))
    frame = table.to_pandas()
    try:
        X = model_matrix(frame, spec)
    except ValueError as err:
        raise DataError(f"{what}: {err}") from None
    return Split(X=X, y=label_vector(frame[spec.label], spec))
