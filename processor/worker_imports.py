"""Python workers that do not re-read Spark's own archives before every task.

Before each task a pyspark worker calls importlib.invalidate_caches() (it may have been handed
new files). On Python 3.11 that makes every zip importer read its archive's directory again, and
a worker imports pyspark from pyspark.zip and has spark-core's jar (5,000 entries) on its path:
about 0.15 s of CPU per task, most of the processor's Python cost at rest (two tasks a batch,
even when no record needs Python). Spark's archives do not change while the worker lives, so
only the archives the application shipped (under the task's SparkFiles directory) are re-read.
"""

from __future__ import annotations

import os
import zipimport

_reread_archive = zipimport.zipimporter.invalidate_caches


def _invalidate_shipped_only(self: zipimport.zipimporter) -> None:
    from pyspark.core.files import SparkFiles

    root = SparkFiles._root_directory
    if root and os.path.abspath(self.archive).startswith(os.path.abspath(root) + os.sep):
        _reread_archive(self)


def install() -> None:
    """In a pyspark worker (inside a task), re-read only shipped archives; elsewhere nothing."""
    from pyspark.taskcontext import TaskContext

    if TaskContext.get() is not None:
        zipimport.zipimporter.invalidate_caches = _invalidate_shipped_only  # type: ignore[method-assign]
