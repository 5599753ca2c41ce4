"""Routing rules: which endpoints receive which outbound messages.

Rules come from configuration (``routing`` in :class:`hub.config.Settings`), e.g. status
changes to both the national portal and the provincial platform, dossiers that came *from*
the national portal only to the department's side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hub.config import RoutingRule


@dataclass(frozen=True, slots=True)
class RouteQuery:
    kind: str
    origin: str
    status: int


class Router:
    def __init__(self, rules: Sequence[RoutingRule], enabled_endpoints: Sequence[str]) -> None:
        self._rules = list(rules)
        self._enabled = set(enabled_endpoints)

    def endpoints_for(self, query: RouteQuery) -> list[str]:
        """Endpoints in rule order, each once, skipping disabled ones."""
        chosen: list[str] = []
        for rule in self._rules:
            if query.kind not in rule.kinds:
                continue
            if rule.origins and query.origin not in rule.origins:
                continue
            if rule.statuses and query.status not in rule.statuses:
                continue
            for endpoint in rule.endpoints:
                if endpoint in self._enabled and endpoint not in chosen:
                    chosen.append(endpoint)
        return chosen
