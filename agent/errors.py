"""The one errors module.

Each class says how the error is handled:

* ``BadInput`` / ``NotFound`` / ``Ambiguous``: the caller (a person or the model) can fix it; the
  tool boundary shows it to the model so it can retry, the CLI prints one line and exits 2.
* ``PolicyDenied``: shown to the model, not to be retried as is; CLI exit 3.
* ``ApprovalRequired``: pauses the run until a second actor approves; CLI exit 3.
* ``ConfigError``: the installation is misconfigured (no model, unreadable policy); CLI exit 2.
* ``PlatformError``: wraps a vendor API error (Google Ads, Meta) with its code; CLI exit 1.

Programming errors are not wrapped: they raise as what they are.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_STOPPED = 3


class AdpilotError(Exception):
    """Base class of every error adpilot raises on purpose."""

    exit_code: int = EXIT_FAILURE
    #: whether a model that caused it should see the message and try again
    model_retry: bool = False

    def __init__(self, message: str) -> None:
        # One line: errors end up in a terminal, an audit record and a model's context.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        """The one-line message."""
        return str(self)


class BadInput(AdpilotError):
    """An argument is malformed or out of range (NaN, negative, unknown unit...)."""

    exit_code = EXIT_BAD_INPUT
    model_retry = True


class NotFound(BadInput):
    """An id, name or sku that does not exist."""


class Ambiguous(BadInput):
    """A name that matches more than one entity; the message lists the candidates."""

    def __init__(self, message: str, candidates: list[str] | None = None) -> None:
        super().__init__(message)
        self.candidates = candidates or []


class ConfigError(AdpilotError):
    """The installation is misconfigured: no model, unreadable policy, bad settings."""

    exit_code = EXIT_BAD_INPUT


class PolicyDenied(AdpilotError):
    """The policy forbids the action; retrying the same action will not help."""

    exit_code = EXIT_STOPPED


class ApprovalRequired(AdpilotError):
    """The run waits for a second actor's approval."""

    exit_code = EXIT_STOPPED


class PlatformError(AdpilotError):
    """An ad platform rejected a call or could not be reached."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after


class ModelError(AdpilotError):
    """A language model call failed after retries, or no model is configured."""

    exit_code = EXIT_FAILURE


class WarehouseBusy(AdpilotError):
    """Another process holds the warehouse's write lock (DuckDB allows one writer process at a time)."""

    exit_code = EXIT_FAILURE
