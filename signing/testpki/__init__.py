"""Throwaway PKI for tests and demos, shaped like the Government specialised PKI.

Public API: :class:`TestPki`, :func:`build_test_pki` and :class:`PkiResponder` (the OCSP, CRL,
TSA and certificate answers). ``hub.simulators.pki`` serves them over HTTP. See docs/signing.md
§6 and §8.7.
"""

from signing.testpki.build import LEAF_NAMES, TestPki, build_test_pki, issue_extra_leaf
from signing.testpki.responders import PkiResponder

__all__ = ["LEAF_NAMES", "PkiResponder", "TestPki", "build_test_pki", "issue_extra_leaf"]
