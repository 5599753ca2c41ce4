"""Throwaway PKI for tests and demos, shaped like the Government specialised PKI.

Public API: :class:`TestPki`, :func:`build_test_pki`, :func:`serve_test_pki`,
:class:`RunningPki`. See docs/signing.md §6 and §8.7.
"""

from signing.testpki.build import LEAF_NAMES, TestPki, build_test_pki
from signing.testpki.server import PkiServiceState, RunningPki, serve_test_pki

__all__ = ["LEAF_NAMES", "PkiServiceState", "RunningPki", "TestPki", "build_test_pki", "serve_test_pki"]
