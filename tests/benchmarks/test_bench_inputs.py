"""The benchmarks' inputs are valid intake requests: a benchmark that stops on its own sample
(as bench_e2e did once when a helper it called moved) measures nothing. Cheap checks only: the
benchmarks themselves are run by hand (README, docs/development.md)."""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
from pathlib import Path

import pytest

import benchmarks
from benchmarks import bench_delivery, bench_e2e
from hub.config import load_settings
from schemas.changes import DossierUpsert


def test_bench_e2e_dossiers_are_valid_and_distinct() -> None:
    bodies = [bench_e2e.dossier(n) for n in (0, 1, 9_998, 9_999, 20_000)]
    codes = [DossierUpsert.model_validate({"dossier": body}).dossier.code for body in bodies]
    assert len(set(codes)) == len(codes)
    assert all(code.startswith("000.00.18.H42-") for code in codes)


@pytest.mark.parametrize(
    "module", sorted(path.stem for path in Path(benchmarks.__file__).parent.glob("bench_*.py"))
)
def test_every_benchmark_imports_and_parses_its_options(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--help`` of each benchmark: its imports resolve (bench_intake once imported a sample
    builder that had been merged away) and its options parse."""
    loaded = importlib.import_module(f"benchmarks.{module}")
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as done, contextlib.redirect_stdout(io.StringIO()):
        loaded.main()
    assert done.value.code == 0


def test_bench_e2e_drains_write_a_worker_configuration_the_hub_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table's drains hand bench_delivery every option its configuration reads (a new
    option of bench_delivery once stopped the table at its first drain)."""
    config = tmp_path / "drain.toml"
    bench_delivery.write_config(config, "http://127.0.0.1:9/deliver", bench_e2e.drain_args(2))
    monkeypatch.setenv("HUB_CONFIG_FILE", str(config))
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}")
    assert settings.worker.concurrency == 64
    assert settings.worker.poll_interval_seconds == bench_delivery.WORKER_POLL_SECONDS == 1.0
    assert settings.endpoints["sink"].url == "http://127.0.0.1:9/deliver"
