"""The Spark-vs-embedded comparison, run in a background thread from the start of the session.

Most of its cost is Spark's JVM (starting it, then about 40 small jobs), a separate process the
rest of the suite does not use, so it overlaps the other tests instead of adding to them.  The
thread and the JVM it launches run at a lower priority (nice 10: Linux keeps a niceness per
thread and a child inherits the launching thread's), so XGBoost in the other tests keeps its
core.  The test that checks the answer (tests/test_steps_preprocess_spark.py) runs last and
waits for it; an error in the thread is raised there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

Result = tuple[Path, dict[str, Any]]


class SparkComparisonJob:
    def __init__(self, run: Callable[[Path], dict[str, Any]]) -> None:
        self._run_in = run
        self.root = Path(tempfile.mkdtemp(prefix="spark-vs-embedded-"))
        self._thread: threading.Thread | None = None
        self._reports: dict[str, Any] | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="spark-comparison", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        try:
            self._reports = self._run_in(self.root)
        except BaseException as error:  # handed to the test that waits, which raises it
            self._error = error

    def result(self) -> Result:
        """Waits for the comparison (starting it if nobody has) and returns (root, reports)."""
        self.start()
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._reports is not None
        return self.root, self._reports

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join()
        shutil.rmtree(self.root, ignore_errors=True)
