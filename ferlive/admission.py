"""Back-pressure for the image API: a bounded number of images in work or waiting.

Past the bound a request is refused at once with 503 and `Retry-After`, before its body is
read, so under overload clients learn quickly that the server is busy instead of waiting
behind a queue that only grows. A request that does get in but waits longer than
`wait_s` for a worker is refused the same way. Limits come from the environment:

    FERLIVE_WORKERS      images analysed at once (default 2: one per core of a small machine)
    FERLIVE_QUEUE        images allowed to wait for a worker (default 16)
    FERLIVE_QUEUE_WAIT_S longest wait for a worker, in seconds (default 5)
"""

from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager, contextmanager


class Busy(Exception):
    """No room: the caller should answer 503 with Retry-After."""

    def __init__(self, message: str, retry_after_s: int = 1):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Admission:
    def __init__(self, workers: int, queue: int, wait_s: float):
        if workers < 1 or queue < 0 or wait_s <= 0:
            raise ValueError(f"need workers >= 1, queue >= 0, wait > 0; got {workers}, {queue}, {wait_s}")
        self.workers, self.queue, self.wait_s = workers, queue, wait_s
        self.admitted = 0  # in work or waiting for a worker
        self._slots = asyncio.Semaphore(workers)

    @classmethod
    def from_env(cls) -> "Admission":
        return cls(int(os.environ.get("FERLIVE_WORKERS", 2)), int(os.environ.get("FERLIVE_QUEUE", 16)),
                   float(os.environ.get("FERLIVE_QUEUE_WAIT_S", 5)))

    @contextmanager
    def place(self):
        """Hold a place (in work or in the queue) for the request, or raise Busy at once."""
        if self.admitted >= self.workers + self.queue:
            raise Busy(f"server busy: {self.admitted} images in work or waiting (limit "
                       f"{self.workers + self.queue}); retry shortly")
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    @asynccontextmanager
    async def worker(self):
        """Wait (at most wait_s) for one of the workers; raise Busy if none frees up in time."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self.wait_s)
        except TimeoutError:
            raise Busy(f"server busy: no worker free within {self.wait_s:g} s; retry shortly") from None
        try:
            yield
        finally:
            self._slots.release()
