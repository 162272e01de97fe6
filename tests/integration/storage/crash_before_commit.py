"""The storage service, stopped dead between writing a batch and committing its offsets.

Run as `python -m tests.integration.storage.crash_before_commit MARKER [storage flags]`: the
real service with its real writer, except that the first commit writes MARKER and then hangs,
so a test can SIGKILL the process exactly where a crash would hurt most.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from common.logs import configure_logging
from storage import consumer, service
from storage.settings import build_parser, settings_from_args


def main() -> None:
    marker = Path(sys.argv[1])
    settings = settings_from_args(build_parser().parse_args(sys.argv[2:]))
    configure_logging(settings.log_level)

    def commit_then_hang(self, next_offsets):
        offsets = {f"{tp.topic}:{tp.partition}": o for tp, o in next_offsets.items()}
        marker.write_text(json.dumps(offsets))
        threading.Event().wait()  # the test kills this process here: written, not committed

    consumer.StorageLoop.commit = commit_then_hang
    service.serve(settings, threading.Event())


if __name__ == "__main__":
    main()
