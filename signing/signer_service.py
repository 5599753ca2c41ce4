"""High-level signing service: pre-check, sign, write atomically; single documents and batches.

Order of operations per Decree 68/2024 Art. 29: (1) check the certificate's validity and
(2) its certification path and revocation status (Circular 15/2025 §2.2, :mod:`signing.precheck`),
(3) sign with the private key, (4) attach the time-stamp from the published TSA, (5) show the
signature per Decree 30/2020 (:mod:`signing.appearance`).

Batch signing (:meth:`SigningService.sign_batch`): the certificate is checked once per batch; the
key is opened once per worker process (never per document); each worker signs its share of the
documents concurrently on one event loop with one shared time-stamper, so a slow TSA (2 s – 2 min)
does not serialise the batch. Every output is written to a temp file and renamed into place: a
failed document leaves no output file.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import queue as queue_mod
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from multiprocessing.util import Finalize
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509

from schemas.errors import HubError, InvalidInputError, SigningError
from signing.appearance import AppearanceTemplate
from signing.image_policy import ImagePolicy
from signing.keys import KeySource
from signing.models import (
    BatchItemResult,
    BatchResult,
    CertificateCheck,
    RevocationPolicy,
    SignatureLevel,
    SigningWarning,
    SignOptions,
    SignResult,
)
from signing.precheck import acheck_signing_certificate
from signing.service import DocumentSigner, atomic_write, open_pdf, remove_leftover_parts
from signing.settings import SigningSettings, read_file
from signing.timestamping import HubTimeStamper, TsaSettings
from signing.trust import TrustStore

__all__ = ["ProgressCallback", "SigningConfig", "SigningService", "config_from_settings"]

_log = logging.getLogger(__name__)

#: ``progress(item, done, total)`` — called in the caller's process after each document.
ProgressCallback = Callable[[BatchItemResult, int, int], None]


@dataclass
class SigningConfig:
    """Everything a signing worker needs besides the key (picklable)."""

    trust_store: TrustStore
    tsa: TsaSettings | None = None
    revocation_policy: RevocationPolicy = RevocationPolicy.WARN
    templates: dict[str, AppearanceTemplate] = field(
        default_factory=lambda: {"default": AppearanceTemplate()}
    )
    signature_png: bytes | None = None
    seal_png: bytes | None = None
    #: Signature/seal images that break Decree 30 Appendix I: refuse, or sign with a warning.
    image_policy: ImagePolicy = ImagePolicy.REFUSE
    #: Skip the pre-signing certificate check (only for keys already checked by the caller).
    precheck: bool = True
    #: Max documents in flight per worker (bounds memory; TSA calls overlap up to this).
    concurrency_per_worker: int = 128
    #: Auto mode uses worker processes only from this many documents on: spawning workers costs
    #: ~1 s, while one process signs ~250 small documents/s (benchmarks/bench_signing.py).
    pool_min_docs: int = 500


def config_from_settings(
    settings: SigningSettings,
    *,
    signature_png: bytes | None = None,
    seal_png: bytes | None = None,
    templates: dict[str, AppearanceTemplate] | None = None,
) -> SigningConfig:
    """Build a :class:`SigningConfig` from the ``[signing]`` settings.

    Trust anchors: the configured files/directories, else the pinned government anchors.
    """
    store = TrustStore.from_settings(settings)
    tsa = (
        TsaSettings(url=settings.tsa_url, timeout_seconds=settings.tsa_timeout_seconds)
        if settings.tsa_url
        else None
    )
    if templates is None:
        templates = {"default": AppearanceTemplate(font_path=settings.font_path), **settings.templates}
    return SigningConfig(
        trust_store=store,
        tsa=tsa,
        revocation_policy=RevocationPolicy(settings.revocation_policy),
        templates=templates,
        signature_png=signature_png,
        seal_png=seal_png,
        image_policy=ImagePolicy(settings.image_policy),
    )


class SigningService:
    """Facade used by the CLI and the API."""

    def __init__(self, config: SigningConfig) -> None:
        self.config = config

    def document_signer(self, signer: Any) -> DocumentSigner:
        c = self.config
        return DocumentSigner(
            signer=signer,
            trust_store=c.trust_store,
            timestamper=HubTimeStamper(c.tsa) if c.tsa is not None else None,
            templates=c.templates,
            signature_png=c.signature_png,
            seal_png=c.seal_png,
            image_policy=c.image_policy,
        )

    async def check_certificate(self, signer: Any) -> CertificateCheck | None:
        """Pre-signing check of a pyHanko signer's certificate (with its certificate registry)."""
        return await self.check_certificate_of(signer.signing_cert, list(signer.cert_registry))

    async def check_certificate_of(
        self, cert: asn1_x509.Certificate, chain: list[asn1_x509.Certificate]
    ) -> CertificateCheck | None:
        """Circular 15/2025 §2.2 check, unless disabled in the configuration."""
        if not self.config.precheck:
            return None
        return await acheck_signing_certificate(
            cert,
            trust_store=self.config.trust_store,
            chain=chain,
            revocation_policy=self.config.revocation_policy,
        )

    def require_timestamper(self, level: SignatureLevel) -> None:
        """Refuse up front, before the key and the certificate check, a level that needs a TSA
        when none is configured (B-T and up, Decree 68/2024 Art. 29 k4; docs/signing.md §6.3)."""
        if level is SignatureLevel.B_B or self.config.tsa is not None:
            return
        raise SigningError(
            f"level {level} needs a time-stamping authority (TSA) and none is configured: "
            "give --tsa-url (hub sign), or set [signing] tsa_url / HUB_SIGNING__TSA_URL "
            "(Government TSA: http://tsa.ca.gov.vn/), or sign at level B-B",
            message_vi=(
                f"Mức ký {level} cần máy chủ cấp dấu thời gian (TSA) nhưng chưa cấu hình: dùng "
                "--tsa-url (hub sign) hoặc đặt [signing] tsa_url / HUB_SIGNING__TSA_URL "
                "(TSA Chính phủ: http://tsa.ca.gov.vn/), hoặc ký ở mức B-B"
            ),
            details={"level": str(level)},
        )

    async def sign_bytes(
        self, data: bytes, key_source: KeySource, options: SignOptions
    ) -> tuple[bytes, SignResult]:
        """Check the certificate, sign one PDF in memory, return the signed bytes and the result."""
        self.require_timestamper(options.level)
        open_pdf(data)  # fail fast on a broken/encrypted PDF before touching the key or the network
        with key_source.open() as signer:
            check = await self.check_certificate(signer)
            doc_signer = self.document_signer(signer)
            try:
                signed = await doc_signer.sign(data, options)
            finally:
                await doc_signer.aclose()
        return signed.data, SignResult(
            size=len(signed.data),
            field_name=signed.field_name,
            level=options.level,
            signed_at=signed.signed_at,
            certificate=check,
            warnings=[*(check.warnings if check else []), *signed.warnings],
        )

    def sign_file(
        self, source: Path, target: Path, key_source: KeySource, options: SignOptions
    ) -> SignResult:
        """Sign ``source`` into ``target`` (atomic); nothing is written if signing fails."""
        data = _read_input(source)
        signed, result = asyncio.run(self.sign_bytes(data, key_source, options))
        atomic_write(target, signed)
        return result.model_copy(update={"output_path": target})

    # -- batch ------------------------------------------------------------------------------

    def sign_batch(
        self,
        inputs: Sequence[Path],
        output_dir: Path,
        key_source: KeySource,
        options: SignOptions,
        *,
        workers: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> BatchResult:
        """Sign many PDFs with one key; per-document outcome; failed documents leave no output.

        ``workers``: ``None`` = auto (one process below ``pool_min_docs``, else all cores),
        ``1`` = in this process, ``N`` = N worker processes (key opened once per worker).
        """
        self.require_timestamper(options.level)
        started = time.perf_counter()
        total = len(inputs)
        items: dict[int, BatchItemResult] = {}
        jobs: list[tuple[int, Path, Path]] = []
        seen: set[str] = set()
        for idx, src in enumerate(inputs):
            if src.name in seen:
                items[idx] = _failed(
                    src,
                    InvalidInputError(
                        f"duplicate output name {src.name} in batch",
                        message_vi=f"Trùng tên tệp {src.name} trong lô ký",
                    ),
                )
                continue
            seen.add(src.name)
            dst = output_dir / src.name
            if dst.resolve() == src.resolve():
                items[idx] = _failed(
                    src,
                    InvalidInputError(
                        f"output would overwrite the original {src.name}; choose another output directory",
                        message_vi=f"Tệp kết quả sẽ ghi đè bản gốc {src.name}; hãy chọn thư mục khác",
                    ),
                )
                continue
            jobs.append((idx, src, dst))

        if workers is None:  # auto
            workers = multiprocessing.cpu_count() if len(jobs) >= self.config.pool_min_docs else 1
        n_workers = max(1, min(workers, len(jobs) or 1))
        in_process = n_workers == 1 or len(jobs) < 4
        done = len(items)

        # The key is opened once here; the certificate is checked once per batch (Circular
        # 15/2025 §2.2) and a refusal aborts the batch before any output is written.
        with key_source.open() as signer:
            check = asyncio.run(self.check_certificate(signer))
            output_dir.mkdir(parents=True, exist_ok=True)
            leftovers = remove_leftover_parts(output_dir)
            if progress is not None:
                for item in list(items.values()):
                    progress(item, done, total)
            if in_process:
                for item_idx, item in _run_in_process(self, signer, jobs, options, progress, done, total):
                    items[item_idx] = item
        if not in_process:
            for item_idx, item in _run_in_pool(
                self.config, key_source, jobs, options, n_workers, progress, done, total
            ):
                items[item_idx] = item
        warnings: list[SigningWarning] = list(check.warnings) if check else []
        if leftovers:
            _log.warning("removed %d unfinished output file(s) from an interrupted batch", len(leftovers))
            warnings.append(
                SigningWarning(
                    code="interrupted_batch_cleaned",
                    message=f"removed {len(leftovers)} unfinished file(s) left in {output_dir} by an "
                    f"interrupted batch: {', '.join(p.name for p in leftovers)}",
                    message_vi=f"Đã xóa {len(leftovers)} tệp ghi dở do lần ký trước bị ngắt "
                    f"trong {output_dir}",
                )
            )
        ordered = [items[i] for i in range(total)]
        elapsed = time.perf_counter() - started
        _log.info(
            "batch signing: %d/%d signed in %.1f s (level %s, %d worker(s))",
            sum(1 for i in ordered if i.ok),
            total,
            elapsed,
            options.level.value,
            n_workers,
        )
        return BatchResult(
            items=ordered,
            certificate=check,
            warnings=warnings,
            elapsed_seconds=elapsed,
        )


def _read_input(path: Path) -> bytes:
    return read_file(path, path.name, f"tệp {path.name}", InvalidInputError)


def _failed(src: Path, exc: BaseException) -> BatchItemResult:
    if isinstance(exc, HubError):
        return BatchItemResult(
            input_path=src, ok=False, error_code=exc.code, error=exc.message, error_vi=exc.message_vi
        )
    _log.exception("unexpected error signing %s", src.name, exc_info=exc)
    return BatchItemResult(
        input_path=src,
        ok=False,
        error_code="internal_error",
        error=f"unexpected error: {type(exc).__name__}",
        error_vi="Lỗi không xác định khi ký văn bản",
    )


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _ByteBudget:
    """Caps the bytes of documents held in memory at once (large PDFs × high concurrency)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = asyncio.Condition()

    async def acquire(self, size: int) -> int:
        size = min(size, self.limit)  # one oversized document may still go alone
        async with self._cond:
            await self._cond.wait_for(lambda: self.used + size <= self.limit)
            self.used += size
        return size

    async def release(self, size: int) -> None:
        async with self._cond:
            self.used -= size
            self._cond.notify_all()


async def _sign_jobs(
    doc_signer: DocumentSigner,
    jobs: list[tuple[int, Path, Path]],
    options: SignOptions,
    concurrency: int,
    on_item: Callable[[int, BatchItemResult], None],
    max_bytes_in_flight: int = 512 * 1024 * 1024,
) -> None:
    sem = asyncio.Semaphore(concurrency)
    budget = _ByteBudget(max_bytes_in_flight)

    async def one(idx: int, src: Path, dst: Path) -> None:
        async with sem:
            held = 0
            try:
                held = await budget.acquire(
                    3 * await asyncio.to_thread(_file_size, src)
                )  # input + output + writer buffers
                data = await asyncio.to_thread(_read_input, src)
                signed = await doc_signer.sign(data, options)
                await asyncio.to_thread(atomic_write, dst, signed.data)
                item = BatchItemResult(input_path=src, output_path=dst, ok=True, field_name=signed.field_name)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a per-document outcome
                item = _failed(src, exc)
            finally:
                if held:
                    await budget.release(held)
        on_item(idx, item)

    try:
        await asyncio.gather(*(one(i, s, d) for i, s, d in jobs))
    finally:
        await doc_signer.aclose()


def _run_in_process(
    service: SigningService,
    signer: Any,
    jobs: list[tuple[int, Path, Path]],
    options: SignOptions,
    progress: ProgressCallback | None,
    done: int,
    total: int,
) -> list[tuple[int, BatchItemResult]]:
    out: list[tuple[int, BatchItemResult]] = []
    counter = [done]

    def on_item(idx: int, item: BatchItemResult) -> None:
        out.append((idx, item))
        counter[0] += 1
        if progress is not None:
            progress(item, counter[0], total)

    doc_signer = service.document_signer(signer)
    asyncio.run(_sign_jobs(doc_signer, jobs, options, service.config.concurrency_per_worker, on_item))
    return out


# -- process pool ---------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _worker_init(config: SigningConfig, key_source: KeySource, events: Any) -> None:
    """Open the key once for this worker process; closed when the worker exits."""
    stack = ExitStack()
    signer = stack.enter_context(key_source.open())
    Finalize(None, stack.close, exitpriority=10)
    _WORKER["doc_signer"] = SigningService(config).document_signer(signer)
    _WORKER["events"] = events
    _WORKER["concurrency"] = config.concurrency_per_worker


def _worker_run(
    jobs: list[tuple[int, Path, Path]], options: SignOptions
) -> list[tuple[int, BatchItemResult]]:
    out: list[tuple[int, BatchItemResult]] = []
    events = _WORKER["events"]

    def on_item(idx: int, item: BatchItemResult) -> None:
        out.append((idx, item))
        events.put((idx, item.model_dump(mode="json")))

    asyncio.run(_sign_jobs(_WORKER["doc_signer"], jobs, options, _WORKER["concurrency"], on_item))
    return out


def _chunk_size(n_jobs: int, signers: int, level: SignatureLevel) -> int:
    """Small chunks balance CPU work between processes; time-stamped levels keep chunks large
    enough that many TSA requests are in flight at once."""
    if level is not SignatureLevel.B_B:
        return 64
    return max(4, math.ceil(n_jobs / (8 * signers)))


def _run_in_pool(
    config: SigningConfig,
    key_source: KeySource,
    jobs: list[tuple[int, Path, Path]],
    options: SignOptions,
    n_workers: int,
    progress: ProgressCallback | None,
    done: int,
    total: int,
) -> list[tuple[int, BatchItemResult]]:
    """``n_workers`` signers: ``n_workers - 1`` spawned processes plus this process.

    Chunks are submitted to the pool; a local thread signs too, taking chunks from the tail
    that no worker has started (``Future.cancel()`` succeeds only for those), so the calling
    process works while the workers start up and every chunk is signed exactly once.
    """
    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    size = _chunk_size(len(jobs), n_workers, options.level)
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    results: list[tuple[int, BatchItemResult]] = []
    local_results: list[tuple[int, BatchItemResult]] = []
    reported: set[int] = set()
    try:
        with ProcessPoolExecutor(
            max_workers=max(1, n_workers - 1),
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(config, key_source, events),
        ) as pool:
            futures: list[Future[list[tuple[int, BatchItemResult]]]] = [
                pool.submit(_worker_run, chunk, options) for chunk in chunks
            ]

            def steal() -> None:
                def on_item(idx: int, item: BatchItemResult) -> None:
                    local_results.append((idx, item))
                    events.put((idx, item.model_dump(mode="json")))

                try:
                    with key_source.open() as signer:
                        doc_signer = SigningService(config).document_signer(signer)
                        for fut, chunk in reversed(list(zip(futures, chunks, strict=True))):
                            if fut.cancel():
                                asyncio.run(
                                    _sign_jobs(
                                        doc_signer, chunk, options, config.concurrency_per_worker, on_item
                                    )
                                )
                except Exception:  # noqa: BLE001 - the pool still signs whatever was not taken
                    _log.exception("local signer stopped; remaining chunks stay with the workers")

            local = threading.Thread(target=steal, name="batch-local-signer", daemon=True)
            local.start()
            count = done
            while True:
                all_done = all(f.done() for f in futures) and not local.is_alive()
                try:
                    idx, raw = events.get(timeout=0.05)
                except queue_mod.Empty:
                    if all_done:
                        break
                    continue
                reported.add(idx)
                count += 1
                if progress is not None:
                    progress(BatchItemResult.model_validate(raw), count, total)
            local.join()
            for fut, chunk in zip(futures, chunks, strict=True):
                if fut.cancelled():
                    continue
                try:
                    results.extend(fut.result())
                except HubError as exc:  # key could not be opened in the worker, etc.
                    results.extend((idx, _failed(src, exc)) for idx, src, _ in chunk)
                except Exception as exc:  # noqa: BLE001 - a crashed worker fails its documents
                    results.extend((idx, _failed(src, exc)) for idx, src, _ in chunk)
    finally:
        events.close()
    results.extend(local_results)
    if progress is not None:
        for idx, item in results:
            if idx not in reported:
                progress(item, min(total, done + len(reported) + 1), total)
    if sorted(i for i, _ in results) != sorted(i for i, _, _ in jobs):
        raise SigningError("batch bookkeeping error", message_vi="Lỗi tổng hợp kết quả ký lô")
    return results
