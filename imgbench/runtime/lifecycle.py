"""One process lifecycle for both services, in named phases (after uvicorn's ``server.py``).

:meth:`Lifecycle.run` does::

    capture_signals   SIGINT and SIGTERM set a stop event (handlers restored at the end)
    startup           bind and start serving (the service's ``start``), then freeze what
                      start-up built out of the garbage collector's way (:mod:`.gcfreeze`)
    main_loop         run the optional background task until a signal arrives
    shutdown          cancel the background task, then the service's ``stop``

and the ready file (:data:`READY_FILE_ENV`) through which a parent process
learns that a child service is up and which ports it bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from imgbench.observe.logs import get_logger
from imgbench.runtime import gcfreeze

#: Environment variable naming the file a service writes once it is serving
#: (JSON: pid and bound ports); a parent waits for it.
READY_FILE_ENV: Final = "IMGBENCH_READY_FILE"
#: The signals that stop a service gracefully.
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

log = get_logger("imgbench.runtime")


def ready_file(environ: Mapping[str, str]) -> Path | None:
    """The ready file requested by the parent process, if any."""
    value = environ.get(READY_FILE_ENV)
    return Path(value) if value else None


def write_ready_file(path: Path, info: dict[str, Any]) -> None:
    """Write ``info`` as JSON; write-then-rename so a reader never sees half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(path)


class Lifecycle:
    """Start a service, serve until SIGINT/SIGTERM, shut it down, restore the handlers.

    ``start`` and ``stop`` are the service's own coroutines; ``background``
    (optional) is started after ``start`` and cancelled before ``stop``
    (the transmitter's comparison schedule). Finishing ``background`` does not
    stop the service: only a signal (or :meth:`request_stop`) does.
    """

    def __init__(
        self,
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
        *,
        background: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._start = start
        self._stop = stop
        self._background = background
        self._should_exit = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def request_stop(self) -> None:
        """What a stop signal does: end the main loop."""
        self._should_exit.set()

    async def run(self) -> None:
        with self.capture_signals():
            await self.startup()
            await self.main_loop()
            await self.shutdown()

    async def startup(self) -> None:
        await self._start()
        # Everything start-up built lives as long as the process: out of the GC's way.
        gcfreeze.freeze_after_startup()
        if self._background is not None:
            self._task = asyncio.ensure_future(self._background())

    async def main_loop(self) -> None:
        await self._should_exit.wait()

    async def shutdown(self) -> None:
        log.info("shutting down")
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._stop()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Stop signals end the main loop while inside; the previous handlers after.

        ``loop.remove_signal_handler`` alone would leave Python's default
        handler, not the one installed before (e.g. :func:`asyncio.run`'s own
        SIGINT handler), so each previous handler is put back explicitly.
        """
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.request_stop)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                loop.remove_signal_handler(sig)
                if handler is not None:  # None: installed outside Python
                    signal.signal(sig, handler)
