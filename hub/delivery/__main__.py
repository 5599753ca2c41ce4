"""``python -m hub.delivery``: a stand-alone worker process (settings from ``HUB_*``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from connectors.http import TransportKind
from hub.config import load_settings
from hub.db.session import Database
from hub.delivery.worker import Worker


async def serve(worker: Worker) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.run(stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hub.delivery", description="Run one delivery worker")
    parser.add_argument("--worker-id")
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--transport", choices=[kind.value for kind in TransportKind], default="aiohttp")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.concurrency:
        settings.worker.concurrency = args.concurrency
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    db = Database.connect(settings.database_url, pool_size=4)
    try:
        worker = Worker(settings, db, worker_id=args.worker_id, transport=TransportKind(args.transport))
        asyncio.run(serve(worker))
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
