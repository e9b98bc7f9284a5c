from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from labelloop.api.app import create_app


@pytest.fixture
def client(settings) -> TestClient:
    return TestClient(create_app(settings))
