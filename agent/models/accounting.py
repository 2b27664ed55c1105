"""Accounting: token usage, cost and latency of every model call, per call and per run.

Each call becomes one ``model_call`` audit event carrying hashes (of the messages sent and of the
prompt file), never the prompt itself. The router also keeps a per-run tally in memory so
``usage(run_id)`` works with any audit sink; for a run made by another process it falls back to
the sink's records when the sink can list them (the SQLite audit log can).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from agent.audit import AuditSink

MILLION = Decimal(1_000_000)
MODEL_CALL_EVENT = "model_call"


class CallRecord(BaseModel):
    """What one model call cost; the payload of a ``model_call`` audit event."""

    run_id: str | None = Field(description="The run (LangGraph thread) the call belongs to.")
    tier: str = Field(description="planner, bulk or code.")
    model: str = Field(description="The model that answered (the fallback when it was used).")
    fallback_from: str | None = Field(default=None, description="The configured model, when a fallback answered.")
    prompt_name: str | None = None
    prompt_version: str | None = None
    prompt_file_sha256: str | None = Field(default=None, description="Hash of the versioned prompt file.")
    messages_sha256: str = Field(description="Hash of the serialized messages sent (never the text).")
    params: dict[str, Any] = Field(default_factory=dict, description="Sampling parameters and tool names.")
    input_tokens: int = 0
    output_tokens: int = 0
    cost_eur: Decimal | None = Field(default=None, description="None when the model has no price in settings.")
    latency_ms: float = 0.0
    cached: bool = False
    attempts: int = 1
    streamed: bool = False


class UsageSummary(BaseModel):
    """Totals of one run's model calls."""

    run_id: str | None
    calls: int = 0
    cached_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_eur: Decimal = Decimal(0)
    unpriced_calls: int = Field(default=0, description="Calls to a model with no price in settings.")
    latency_ms: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def add(self, record: CallRecord) -> None:
        """Fold one call into the totals."""
        self.calls += 1
        self.cached_calls += int(record.cached)
        self.input_tokens += record.input_tokens
        self.output_tokens += record.output_tokens
        self.latency_ms = round(self.latency_ms + record.latency_ms, 3)
        if record.cost_eur is None:
            self.unpriced_calls += 1
        else:
            self.cost_eur += record.cost_eur


def cost_of(prices: dict[str, tuple[Decimal, Decimal]], model: str, input_tokens: int,
            output_tokens: int) -> Decimal | None:
    """EUR for a call from the price table (EUR per million input / output tokens); None if unpriced."""
    if model.startswith(("scripted:", "function:")):
        return Decimal(0)
    price = prices.get(model)
    if price is None:
        return None
    per_in, per_out = (Decimal(str(p)) for p in price)
    return (per_in * input_tokens + per_out * output_tokens) / MILLION


class Accountant:
    """Records calls to the audit sink and keeps per-run totals."""

    def __init__(self, audit: AuditSink | None) -> None:
        self._audit = audit
        self._lock = threading.Lock()
        self._runs: dict[str | None, UsageSummary] = defaultdict(lambda: UsageSummary(run_id=None))

    def record(self, record: CallRecord) -> None:
        """Count the call and append it to the audit sink."""
        with self._lock:
            summary = self._runs[record.run_id]
            summary.run_id = record.run_id
            summary.add(record)
        if self._audit is not None:
            self._audit.append(MODEL_CALL_EVENT, record.model_dump(mode="json"), run_id=record.run_id)

    def usage(self, run_id: str | None) -> UsageSummary:
        """The totals of one run: from this process's tally, else from the audit sink's records."""
        with self._lock:
            if run_id in self._runs:
                return self._runs[run_id].model_copy()
        summary = UsageSummary(run_id=run_id)
        records = getattr(self._audit, "records", None)
        if callable(records) and run_id is not None:
            for rec in records(run_id=run_id, event=MODEL_CALL_EVENT):
                summary.add(CallRecord.model_validate(rec.payload))
        return summary
