"""One error hierarchy; ``api/errors.py`` maps each class to one HTTP status."""

from __future__ import annotations


class LabelloopError(Exception):
    """Base class: every error labelloop raises on purpose."""

    status_code = 400

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def to_dict(self) -> dict[str, str | None]:
        return {"error": type(self).__name__, "message": self.message, "where": self.where}


class AuthenticationError(LabelloopError):
    """No credentials, or credentials that are unknown, revoked or wrong."""

    status_code = 401


class PermissionDeniedError(LabelloopError):
    """A known user whose role in the project does not allow the action."""

    status_code = 403


class NotFoundError(LabelloopError):
    """A project, item, task, batch or version that does not exist."""

    status_code = 404


class ValidationError(LabelloopError):
    """Input that breaks the project's schema (unknown label, empty text, bad file)."""

    status_code = 422


class ConflictError(LabelloopError):
    """A request that contradicts stored state (duplicate name, task already answered)."""

    status_code = 409


class ImmutableRecordError(ConflictError):
    """Something tried to change an append-only record (label history, audit log)."""


class ImmutableVersionError(ImmutableRecordError):
    """Something tried to change a frozen dataset version."""


class QualityGateError(ConflictError):
    """A batch below its quality gate was asked to feed a dataset version or training."""


class EmptyPoolError(LabelloopError):
    """Selection was asked to pick from a pool with no unlabeled items."""

    status_code = 409


class UnavailableError(LabelloopError):
    """The server or the database cannot be reached, or cannot answer now: retry later."""

    status_code = 503
