"""The loop's closed vocabularies: roles, statuses and reasons (stored by value)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a person may do in a project (``access.policy`` says which actions)."""

    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"
    ML_TEAM = "ml-team"
    ADMIN = "admin"


class BatchStatus(StrEnum):
    OPEN = "open"
    PASSED = "passed"
    FLAGGED = "flagged"
    RESOLVED = "resolved"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class TaskReason(StrEnum):
    """Why an item went to people (``selection.routing``, ``quality.review``)."""

    SAFETY_CRITICAL = "safety-critical"
    LOW_CONFIDENCE = "low-confidence"
    AUDIT = "audit"
    CALIBRATION = "calibration"
    REREVIEW = "re-review"


class AssignmentStatus(StrEnum):
    OPEN = "open"
    SUBMITTED = "submitted"
    SKIPPED = "skipped"  # the holder passed: the place goes to someone else


class AnswerStatus(StrEnum):
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    DRAFT = "draft"


class AnnotatorStatus(StrEnum):
    ACTIVE = "active"
    FLAGGED = "flagged"


class LabelOrigin(StrEnum):
    """Who stands behind an item's current label."""

    HUMAN = "human"
    REVIEWED = "reviewed"
    AUTO = "auto"
    GIVEN = "given"


class LabelReason(StrEnum):
    """Why an item's label changed: each change is one ``label_events`` row."""

    ANSWER = "answer"
    ADJUDICATION = "adjudication"
    REREVIEW = "re-review"
    AUTO_ACCEPT = "auto-accept"
    REVERT = "revert"
    IMPORT = "import"  # labels carried over by the v2 migration


class AuditAction(StrEnum):
    ANSWER = "answer"
    ADJUDICATE = "adjudicate"
    RESOLVE_GATE = "resolve-gate"
    REINSTATE = "reinstate"
    GUIDELINE = "guideline"
    EXPORT = "export"
    TRAIN = "train"
    NEXT_BATCH = "next-batch"
    INGEST = "ingest"
    PRELABEL = "prelabel"
    CANCEL_JOB = "cancel-job"
    FREEZE = "freeze"
    PROJECT = "project"
    USER = "user"
    TOKEN = "token"
    MEMBER = "member"
    REREVIEW = "re-review"
    TARGET = "target"


class JobKind(StrEnum):
    """Long work run by the queue's workers, not inside a request (``labelloop.jobs``)."""

    PRELABEL = "prelabel"
    TRAIN = "train"
    QA = "qa"  # a completed batch's QA and gate
    INGEST = "ingest"  # a large file, in committed chunks
    EMBED = "embed"  # the project's items for an encoder (a new or fine-tuned one)
    EXPORT = "export"  # a dataset version written to a file, for download
    NEXT_BATCH = "next-batch"  # the pool pre-labeled in chunks, then the next batch made


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FindingKind(StrEnum):
    """What an evaluation found (``remediate``)."""

    F1_DROP = "f1-drop"  # a class's F1 fell against the previous model
    CONFUSION = "confusion"  # a pair of classes confused more than before
    SLICE = "slice"  # a slice of the training rows (annotator, batch, guideline, source...)
    LABEL_ERRORS = "label-errors"  # suspected label errors among the training rows


class TargetAction(StrEnum):
    """What a remediation target asks for."""

    BOOST = "boost"  # the next batches sample the target's classes more
    REREVIEW = "re-review"  # people answer the target's items again
    GUIDELINE = "guideline"  # a guideline change request


class TargetStatus(StrEnum):
    OPEN = "open"  # raised; its action not yet carried out
    ACTING = "acting"  # its action is under way (re-review tasks made, boost in force)
    ADDRESSED = "addressed"  # a dataset version holds the fix; awaiting an evaluation
    CLOSED = "closed"  # an evaluation confirmed the fix
    DISMISSED = "dismissed"  # its owner judged it no fault of the data
