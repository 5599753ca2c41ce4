"""Citizen status lookup: web/JSON by dossier code + ID number, QR codes, SMS replies."""

from hub.lookup.service import LookupService, LookupView, StepView

__all__ = ["LookupService", "LookupView", "StepView"]
