"""Fault injection for the crash tests: ``hit(name)`` kills this process with SIGKILL when
``LABELLOOP_FAILPOINT`` names that point, so a test can stop long work at each stage and
check what a real crash there leaves behind. Without the variable it does nothing."""

from __future__ import annotations

import os
import signal

ENV = "LABELLOOP_FAILPOINT"


def hit(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
