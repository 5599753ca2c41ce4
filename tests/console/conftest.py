"""Fixtures for the console tests: the signing desk's test PKI, key images and live hub
(:mod:`tests.console.desk_support`)."""

from tests.console.desk_support import hub, images, pki

__all__ = ["hub", "images", "pki"]
