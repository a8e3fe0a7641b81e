"""Every error reconciler raises on purpose, and where a problem in a spec was found.

Library code raises these; only the CLI turns them into messages and exit codes. Anything that
is not a ``ReconcilerError`` reaching the CLI is a bug. Each class says what it means to a
pipeline: ``kind`` names the failure in failure documents and apply reports (docs/plan-json.md,
docs/report-json.md), and ``refusal`` where an apply report tells a refusal apart (a stale
plan, a held lock, a limit reached), so nothing else keeps a table of kinds.

    class                       kind (refusal)  what
    ReconcilerError             error           the root
    ├── ConfigError             config          bad flags, environment, missing key, refused URL
    │   └── UnknownTargetError                  --target names an AOI no spec declares
    ├── SpecError               spec            problems in the specs, each with its position
    │   └── ResolutionError                     references the live API does not know
    ├── ApiError                api             the API answered with an error, or not at all
    │   ├── TransportError                      connection refused/dropped (after retries)
    │   │   ├── CutShortError                   an answer whose body stopped half-way
    │   │   └── DeadlineError                   no whole answer within the request's deadline
    │   │       └── RunDeadlineError (timeout)  ... or within the run's --timeout
    │   ├── InvalidResponseError                an answer we cannot use: not JSON, wrong shape
    │   ├── UnauthorizedError                   401
    │   ├── ForbiddenError                      403
    │   │   └── UnreadableAoiError              ... on some AOIs: the plan leaves them out
    │   ├── NotFoundError                       404
    │   ├── ConflictError                       409
    │   ├── ApiValidationError                  400, 422 and any other 4xx
    │   ├── RateLimitedError                    429 (after retries)
    │   └── ServerError                         5xx (after retries)
    ├── PlanFileError           plan-file       a saved plan that cannot be read or used
    │   ├── StalePlanError      (stale-plan)    the specs or the world changed since
    │   └── UnverifiedPlanError                 its changes are not what the specs call for
    ├── StateError              state           the state cannot be read, written or locked
    │   ├── StateLockedError    (locked)        another apply holds the lock (state.holder)
    │   │   ├── LockWaitTimeoutError (timeout)  the wait for it reached --timeout
    │   │   └── StaleLockError                  ... and it looks dead: 'state unlock' breaks it
    │   └── LockNotReleasedError                the lock could not be removed: it is left behind
    └── ApplyError              error           apply cancelled at its prompt
        └── TooManyChangesError (too-many-changes) more changes than --max-changes allows
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar


# Not frozen, though never changed: loading a large spec builds one per YAML node, and a
# frozen dataclass takes three times as long to construct (its fields go in through
# object.__setattr__). unsafe_hash keeps it hashable by value, as frozen did.
@dataclass(order=True, slots=True, unsafe_hash=True)
class Where:
    """A position in a spec file: 1-based line and column, as editors count them. Treat it as
    immutable."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the specs; ``where`` is None only when no position exists."""

    message: str
    where: Where | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def to_dict(self) -> dict[str, object]:
        where = self.where
        return {
            "path": where.path if where else None,
            "line": where.line if where else None,
            "column": where.column if where else None,
            "message": self.message,
        }


class ReconcilerError(Exception):
    """Root of every error reconciler raises deliberately."""

    #: What failed, as failure documents and apply reports name it.
    kind: ClassVar[str] = "error"
    #: What an apply report calls it instead of ``kind``: a refusal a pipeline acts on.
    refusal: ClassVar[str | None] = None

    @property
    def report_kind(self) -> str:
        """``error.kind`` of an apply report (docs/report-json.md)."""
        return self.refusal or self.kind


class ConfigError(ReconcilerError):
    """A flag, environment variable or setting is missing or wrong."""

    kind = "config"


class UnknownTargetError(ConfigError):
    """``--target`` names AOIs that no spec declares; ``targets`` are those names."""

    def __init__(self, message: str, *, targets: Iterable[str]) -> None:
        self.targets = tuple(targets)
        super().__init__(message)


class SpecError(ReconcilerError):
    """The specs are wrong; carries every problem found, not just the first."""

    kind = "spec"

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(
            problems, key=lambda p: (p.where is None, p.where or Where("", 0, 0), p.message)
        )
        super().__init__("\n".join(str(p) for p in self.problems))


class ResolutionError(SpecError):
    """References in the specs (AOI, index, asset, date, mode) that the live API does not know."""


class ApiError(ReconcilerError):
    """The API answered with an error status, or could not be reached at all.

    ``status`` is the HTTP status (None for transport failures); ``code`` and ``api_message``
    come from the API's ``{"error": {"code", "message", "details"}}`` body when it sent one.
    The request line never contains the API key: it only travels in a header.
    """

    kind = "api"

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        status: int | None = None,
        code: str | None = None,
        api_message: str | None = None,
        details: object = None,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.code = code
        self.api_message = api_message
        self.details = details
        super().__init__(message)


class TransportError(ApiError):
    """Connection refused or dropped, or a timeout, after the retries ran out."""


class CutShortError(TransportError):
    """An answer whose body stopped half-way: the connection broke or went silent in it.

    The request arrived and may have been carried out; a read is sent again, a create looked up.
    """


class DeadlineError(TransportError):
    """No complete answer within the request's deadline, or the run's ``--timeout`` is up."""


class RunDeadlineError(DeadlineError):
    """The run's deadline (``--timeout``), not the request's own, ended or refused a call."""

    refusal = "timeout"


class InvalidResponseError(ApiError):
    """An answer we cannot use: not JSON, nested or sized beyond bounds, or of the wrong shape.

    Never read as "nothing there": a listing without its list is this error, not empty.
    """


class UnauthorizedError(ApiError):
    """401: the API key is missing or wrong."""


class ForbiddenError(ApiError):
    """403: the key is valid but may not do this."""


class UnreadableAoiError(ForbiddenError):
    """403 on the visualizations or assets of some AOIs: the plan leaves them out, and plans
    (and apply carries out) every other AOI's changes; the command still fails."""


class NotFoundError(ApiError):
    """404: the AOI or visualization does not exist (for this key)."""


class ConflictError(ApiError):
    """409: the thing being created already exists."""


class ApiValidationError(ApiError):
    """400, 422 or another 4xx: the API refused the request as malformed or invalid."""


class RateLimitedError(ApiError):
    """429 that persisted through every retry."""


class ServerError(ApiError):
    """5xx that persisted through every retry."""


class PlanFileError(ReconcilerError):
    """A saved plan file is unreadable, of an unknown format version, or tampered with."""

    kind = "plan-file"


class StalePlanError(PlanFileError):
    """The specs or the observed world changed since the saved plan was made."""

    refusal = "stale-plan"


class UnverifiedPlanError(PlanFileError):
    """A saved plan whose changes are not the ones the specs and the API call for: edited
    after it was saved (whatever its checksum says), or made from other specs or state."""


class StateError(ReconcilerError):
    """The rollback state cannot be read or written, or its lock cannot be used."""

    kind = "state"


class ApplyError(ReconcilerError):
    """Apply refused to start: cancelled at its prompt."""


class TooManyChangesError(ApplyError):
    """The plan has more changes than the caller allowed (``Plan.raise_if_unsafe``)."""

    refusal = "too-many-changes"
