"""Fixtures for the service tests: the throwaway PKI on loopback and sample signature images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.simulators.pki import RunningPki, serve_test_pki
from signing.samples import write_sample_images


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPki]:
    """OCSP, CRL and TSA of the Government-shaped test PKI, one per session."""
    with serve_test_pki(tmp_path_factory.mktemp("pki")) as running:
        yield running


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The officer's blue signature PNG and the agency's red seal PNG, as files."""
    return write_sample_images(tmp_path_factory.mktemp("images"))
