"""The CLI's remote mode: the same commands, sent to a labelloop server with a token.

``labelloop --server URL --token TOKEN <command>`` (or LABELLOOP_SERVER and LABELLOOP_TOKEN)
acts as the token's user, under their role, through the HTTP API; the server checks and
audits it as any other request. Its 4xx answers come back as the same error types the
local commands raise, so the CLI prints them alike and exits with 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from labelloop.core.errors import (
    AuthenticationError,
    ConflictError,
    LabelloopError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
    ValidationError,
)

ERRORS: dict[int, type[LabelloopError]] = {
    401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    409: ConflictError, 422: ValidationError, 503: UnavailableError,
}
TIMEOUT_S = 600.0  # training and pre-labeling answer when done


def part(value: str | int) -> str:
    """A path segment: a user-given name never becomes more than one segment."""
    return quote(str(value), safe="")


class Remote:
    """A labelloop server reached over HTTP with a bearer token."""

    def __init__(self, url: str, token: str, *, transport: httpx.BaseTransport | None = None,
                 ) -> None:
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=TIMEOUT_S,
                                   headers={"Authorization": f"Bearer {token}"},
                                   transport=transport)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request; the JSON answer, or the server's error raised as ours."""
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise UnavailableError(f"cannot reach {self.client.base_url}: {exc}",
                                   where="--server") from None
        _raise_for(response)
        return response.json() if response.content else None

    def download(self, path: str, out: BinaryIO, **kwargs: Any) -> int:
        """Stream a response body into ``out``; the bytes written."""
        try:
            with self.client.stream("GET", path, **kwargs) as response:
                if response.is_error:
                    response.read()
                    _raise_for(response)
                n = 0
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    n += len(chunk)
                return n
        except httpx.HTTPError as exc:
            raise UnavailableError(f"cannot reach {self.client.base_url}: {exc}",
                                   where="--server") from None

    def upload(self, path: str, file: Path, **params: Any) -> Any:
        with file.open("rb") as fh:
            return self.call("POST", path, params={k: v for k, v in params.items()
                                                   if v is not None},
                             files={"file": (file.name, fh)})


def _raise_for(response: httpx.Response) -> None:
    if not response.is_error:
        return
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, dict):
        message, where = str(detail.get("message", "")), detail.get("where")
    else:
        message, where = f"{response.status_code} {response.reason_phrase}", None
    kind = ERRORS.get(response.status_code,
                      UnavailableError if response.status_code >= 500 else LabelloopError)
    raise kind(f"server: {message}", where=where)
