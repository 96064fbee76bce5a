"""Computing a write's Dask tasks: on xzaro's own pool under Dask's threaded scheduler, with an
optional progress bar on stderr under every scheduler.

``progress`` is ``False`` (no bar, the default), ``True`` (a bar on stderr, always: asked for
explicitly, it shows in a log file or a test's capture too) or ``"auto"`` (a bar only where
someone watches: stderr is a terminal, or the process is a Jupyter kernel). The bar is tqdm's
when tqdm is installed, else Dask's ``ProgressBar``; under a ``dask.distributed`` client it is
``distributed.progress``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from xzaro.concurrency import thread_pool

#: The values ``progress`` takes.
PROGRESS_VALUES = (False, True, "auto")


def check_progress(progress: Any) -> None:
    """Refuse a ``progress`` that is not ``True``, ``False`` or ``"auto"``.

    Raises
    ------
    ValueError
        Naming the option and the value given.
    """
    if isinstance(progress, (bool, np.bool_)) or (isinstance(progress, str) and progress == "auto"):
        return
    raise ValueError(f"progress must be True, False or 'auto', got {progress!r}")


def shows_progress(progress: bool | str) -> bool:
    """Whether a bar is shown for ``progress`` (checked) here and now: ``"auto"`` shows one
    where stderr is a terminal or in a Jupyter kernel."""
    check_progress(progress)
    if isinstance(progress, str):
        stderr = sys.stderr
        return bool(stderr is not None and stderr.isatty()) or _in_jupyter_kernel()
    return bool(progress)


def _in_jupyter_kernel() -> bool:
    """Whether this code runs in a Jupyter kernel (not merely in a process that imported
    ipykernel, as a notebook runner does)."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _distributed_client(scheduler: Any) -> Any:
    """The ``distributed.Client`` whose ``get`` is ``scheduler``, else ``None``."""
    if "distributed" not in sys.modules:  # no client can exist without the import
        return None
    from distributed import Client

    client = getattr(scheduler, "__self__", None)
    return client if isinstance(client, Client) else None


def compute_writes(*tasks: Any, progress: bool | str = False, **kwargs: Any) -> tuple:
    """``dask.compute(*tasks, **kwargs)``; under Dask's default threaded scheduler, on xzaro's
    own pool.

    Write tasks encode their chunks on that pool; from a pool thread they encode inline, so
    Dask's threads and the pool do not oversubscribe the cores while a coarsening task waits
    for a core.
    Other schedulers (a distributed client, processes, synchronous) are used as configured.

    When a task fails, the error is raised once none of the computation's tasks still runs
    (Dask itself raises at the first failure and leaves the others running): a caller that
    cleans up or writes again after the error never races a write of the failed one.

    Parameters
    ----------
    *tasks
        Dask collections to compute.
    progress
        ``True``, ``False`` or ``"auto"`` (see the module docstring): a progress bar on
        stderr, tqdm's (else Dask's ``ProgressBar``) under the local schedulers; under a
        ``dask.distributed`` client the tasks are submitted with ``client.compute``, followed
        with ``distributed.progress`` (a widget in a notebook) and gathered.
    **kwargs
        Passed to ``dask.compute`` (``scheduler``, ``optimize_graph``, ...).

    Returns
    -------
    The computed results, one per task.
    """
    import dask
    import dask.threaded
    from dask.base import get_scheduler

    progress = shows_progress(progress)
    if not tasks:
        return ()
    scheduler = get_scheduler(scheduler=kwargs.get("scheduler"), collections=list(tasks))
    client = _distributed_client(scheduler)
    if client is not None:
        return _compute_on_client(client, tasks, kwargs, progress)
    given = kwargs.get("pool")
    if scheduler is dask.threaded.get and (given is None or isinstance(given, ThreadPoolExecutor)):
        pool = _SettlingPool(given or thread_pool())
        kwargs = {**kwargs, "scheduler": "threads", "pool": pool}
        with pool.settles():
            return _compute_locally(tasks, kwargs, progress)
    return _compute_locally(tasks, kwargs, progress)


def _compute_locally(tasks: tuple, kwargs: dict[str, Any], progress: bool) -> tuple:
    """``dask.compute`` under a local scheduler, with a bar if ``progress``."""
    import dask

    if not progress:
        return dask.compute(*tasks, **kwargs)
    with _local_bar():
        return dask.compute(*tasks, **kwargs)


class _SettlingPool:
    """The thread pool Dask's threaded scheduler submits one computation's tasks to, keeping
    the futures not yet done so that :meth:`settles` can wait for them after a failure."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._max_workers = pool._max_workers  # what dask.threaded.get reads of a pool
        self._running: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = self._pool.submit(fn, *args, **kwargs)
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._running.discard(future)

    @contextlib.contextmanager
    def settles(self) -> Any:
        """On an error inside, cancel the tasks not started and wait for the running ones."""
        try:
            yield
        except BaseException:
            with self._lock:
                left = list(self._running)
            for future in left:
                future.cancel()
            wait(left)
            raise


def _local_bar() -> Any:
    """A progress bar for Dask's local schedulers: tqdm's if installed, else Dask's."""
    try:
        import tqdm
    except ImportError:
        from dask.diagnostics import ProgressBar

        return ProgressBar(out=sys.stderr)
    from dask.callbacks import Callback

    class TqdmBar(Callback):
        """One tqdm bar over the tasks of the computation it watches (not nested ones)."""

        def __init__(self) -> None:
            super().__init__()
            self._state: Any = None
            self._bar: Any = None

        def _start_state(self, dsk: Any, state: Any) -> None:
            if self._state is not None:
                return
            self._state = state
            done = len(state["finished"])
            total = done + sum(len(state[k]) for k in ("ready", "waiting", "running"))
            self._bar = tqdm.tqdm(
                total=total,
                initial=done,
                file=sys.stderr,
                desc="[zaro] writing",
                unit="task",
                bar_format=BAR_FORMAT,
            )

        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, id: Any) -> None:
            if state is self._state:
                self._bar.update(1)

        def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
            if state is self._state:
                self._bar.close()

    return TqdmBar()


#: tqdm's bar, worded as Dask's (``100% Completed``).
BAR_FORMAT = "{desc}: {percentage:3.0f}% Completed |{bar}| {n_fmt}/{total_fmt} tasks [{elapsed}]"


def _compute_on_client(client: Any, tasks: tuple, kwargs: dict[str, Any], progress: bool) -> tuple:
    """Compute ``tasks`` on a distributed client, showing ``distributed.progress`` if
    ``progress``; on a failure, raise once every task has finished or failed."""

    options = {k: v for k, v in kwargs.items() if k != "scheduler"}
    futures = client.compute(list(tasks), **options)
    try:
        if progress:
            _show_distributed_progress(futures)
        try:
            return tuple(client.gather(futures))
        except BaseException:
            client.cancel(futures)
            _wait_for_workers(client, _graph_keys(tasks))
            raise
    finally:
        for future in futures:
            future.release()


#: How often a failed computation asks its workers whether its tasks still run.
SETTLE_POLL_SECONDS = 0.05


def _graph_keys(tasks: tuple) -> set[Any]:
    """What identifies the tasks of the Dask collections among ``tasks`` (:func:`_task_id`)."""
    from dask.base import is_dask_collection

    return {
        _task_id(key) for task in tasks if is_dask_collection(task) for key in task.__dask_graph__()
    }


def _task_id(key: Any) -> Any:
    """A key without its name's prefix: a fused task is named after the names of the tasks it
    fuses (``xarray-sum-<token>`` for ``sum-<token>``), its token and indices those of the
    last one."""
    if isinstance(key, tuple) and key and isinstance(key[0], str):
        return (key[0].rsplit("-", 1)[-1], *key[1:])
    return key.rsplit("-", 1)[-1] if isinstance(key, str) else key


def _wait_for_workers(client: Any, keys: set[Any]) -> None:
    """Return once no worker of ``client`` runs a task identified by one of ``keys``. A worker
    keeps running a task the scheduler has cancelled: a thread cannot be interrupted."""
    while True:
        running = client.run(executing_keys)
        if not any(_task_id(key) in keys for on_worker in running.values() for key in on_worker):
            return
        time.sleep(SETTLE_POLL_SECONDS)


def executing_keys(dask_worker: Any) -> list[Any]:
    """The keys of the tasks ``dask_worker`` runs now (a ``Client.run`` function)."""
    state = dask_worker.state
    return [task.key for task in (*state.executing, *state.long_running)]


def _show_distributed_progress(futures: list[Any]) -> None:
    """``distributed.progress``: in a console a text bar that blocks until the futures finish
    (written to stderr, not stdout); in a notebook a widget, displayed at once."""
    import distributed

    with contextlib.redirect_stdout(sys.stderr):
        try:
            widget = distributed.progress(futures)
        except ImportError:  # a notebook without ipywidgets
            widget = distributed.progress(futures, notebook=False)
    if widget is not None:
        from IPython.display import display

        display(widget)


def delayed_after(finalize: Any, tasks: list[Any]) -> Any:
    """``dask.delayed(finalize)(*results)``, where ``tasks`` are Dask arrays (or values already
    computed), passed to Dask as ONE collection.

    Dask optimizes the collections given as arguments to a delayed call one by one, which
    copies the work they share into each of them: three variables derived from one source
    would compute it three times (and a source that is not deterministic would give them
    different values)."""
    import dask
    import dask.array as da
    import numpy as np

    lazy = [i for i, task in enumerate(tasks) if hasattr(task, "dask")]
    if not lazy:
        return dask.delayed(finalize)(*tasks)
    counts = da.stack([tasks[i].map_blocks(np.asarray, dtype=np.int64) for i in lazy])
    eager = {i: task for i, task in enumerate(tasks) if i not in lazy}

    def run(computed: Any) -> Any:
        values = {**eager, **dict(zip(lazy, computed))}
        return finalize(*(values[i] for i in range(len(tasks))))

    return dask.delayed(run)(counts)
