"""``hub report outages``: the ``report_app`` of :mod:`hub.commands.outage`, mounted on its own."""

from __future__ import annotations

from hub.commands.outage import report_app as app

__all__ = ["app"]
