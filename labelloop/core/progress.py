"""Progress reporting that library code can call without knowing who listens.

A ``Progress`` is called once per long step with a description and a total, and returns a
function to advance by n. The CLI passes rich progress bars; the API and tests pass nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Advance = Callable[[int], None]


class Progress(Protocol):
    def __call__(self, description: str, total: int) -> Advance: ...


def silent(description: str, total: int) -> Advance:  # noqa: ARG001
    return lambda n: None
