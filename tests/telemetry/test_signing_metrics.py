"""Signing attempts are counted and timed where they are audited (hub/services/signing_authority.py)."""

from __future__ import annotations

from hub.db.session import Database
from hub.services.signing_authority import SigningAttempt, SigningAudit
from hub.telemetry.metrics import HubMetrics
from schemas.errors import PermissionDeniedError
from signing.settings import KeyPurpose


def test_each_audited_attempt_is_counted_by_purpose_and_outcome(db: Database) -> None:
    metrics = HubMetrics()
    audit = SigningAudit(db, metrics=metrics)
    seal = SigningAttempt("clerk-1", "documents", "so-seal", "ab" * 32, KeyPurpose.SEAL)
    audit.record(seal, "signed")
    audit.record(seal, "signed")
    audit.refused(SigningAttempt("x", "documents", "nope", "cd" * 32), PermissionDeniedError("no"))

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert value("hub_signing_duration_seconds_count", purpose="seal", outcome="signed") == 2
    assert value("hub_signing_duration_seconds_count", purpose="unknown", outcome="refused") == 1
    assert value("hub_signing_duration_seconds_count", purpose="personal", outcome="signed") is None
    total = value("hub_signing_duration_seconds_sum", purpose="seal", outcome="signed")
    assert total is not None
    assert total >= 0
