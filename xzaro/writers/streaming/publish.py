"""When a stream's metadata follows its stored rows: at once, or at most every so often.

Rewriting the metadata after every stored row costs a few file writes per row, as much as a
row's objects when rows are small and come fast. :class:`RowPublisher` publishes the rows
stored at once when the last publication is at least ``interval`` seconds old, and otherwise
a timer publishes them when it is: a reader sees every stored row at most ``interval`` seconds
after it is written, even when no row follows it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Seconds between two publications of stored rows (metadata rewrites) of a stream.
METADATA_INTERVAL = 0.1


class RowPublisher:
    """Calls ``publish(rows)`` with the number of rows stored, at most every ``interval``
    seconds, the last call never later than ``interval`` after the rows were stored.

    Parameters
    ----------
    lock
        Held by the caller of :meth:`rows_stored` and :meth:`close`, and by the timer around
        its ``publish`` call (the device's metadata lock).
    publish
        Writes the metadata covering the first ``rows`` rows.
    interval
        Seconds; 0 publishes every call at once.
    """

    def __init__(
        self,
        lock: threading.Lock,
        publish: Callable[[int], None],
        interval: float = METADATA_INTERVAL,
    ) -> None:
        self._lock, self._publish, self._interval = lock, publish, interval
        self._last = time.monotonic()  # the stream's first metadata was just written
        self._pending: int | None = None
        self._timer: threading.Timer | None = None
        self._closed = False
        #: The failure of a publication made by the timer, if any.
        self.error: BaseException | None = None

    def rows_stored(self, rows: int) -> None:
        """The first ``rows`` rows are stored (called under the lock)."""
        if self._closed:
            return
        wait = self._last + self._interval - time.monotonic()
        if wait <= 0:
            self._pending = None
            self._publish_now(rows)
            return
        self._pending = rows
        if self._timer is None:
            self._timer = threading.Timer(wait, self._publish_later)
            self._timer.daemon = True
            self._timer.start()

    def close(self) -> None:
        """Publish nothing more (called under the lock; the caller writes the last metadata)."""
        self._closed = True
        self._pending = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _publish_now(self, rows: int) -> None:
        self._publish(rows)
        self._last = time.monotonic()

    def _publish_later(self) -> None:
        with self._lock:
            self._timer = None
            rows, self._pending = self._pending, None
            if rows is None or self._closed:
                return
            try:
                self._publish_now(rows)
            except BaseException as e:  # raised by the stream's next call
                self.error = self.error or e
