from __future__ import annotations

import pytest

from tests.unit.producer.servers import SourceServer


@pytest.fixture
def source_server():
    server = SourceServer().start()
    yield server
    server.stop()
