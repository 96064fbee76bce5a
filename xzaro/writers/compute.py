"""Computing a write's Dask tasks: on xzaro's own pool under Dask's threaded scheduler, with an
optional progress bar on stderr under every scheduler."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from xzaro.concurrency import thread_pool


def _distributed_client(scheduler: Any) -> Any:
    """The ``distributed.Client`` whose ``get`` is ``scheduler``, else ``None``."""
    if "distributed" not in sys.modules:  # no client can exist without the import
        return None
    from distributed import Client

    client = getattr(scheduler, "__self__", None)
    return client if isinstance(client, Client) else None


def compute_writes(*tasks: Any, progress: bool = False, **kwargs: Any) -> tuple:
    """``dask.compute(*tasks, **kwargs)``; under Dask's default threaded scheduler, on xzaro's
    own pool.

    Write tasks encode their chunks on that pool; from a pool thread they encode inline, so
    Dask's threads and the pool do not oversubscribe the cores while a coarsening task waits
    for a core.
    Other schedulers (a distributed client, processes, synchronous) are used as configured.

    Parameters
    ----------
    *tasks
        Dask collections to compute.
    progress
        Show a progress bar on stderr: Dask's ``ProgressBar`` under the local schedulers;
        under a ``dask.distributed`` client the tasks are submitted with ``client.compute``,
        followed with ``distributed.progress`` (a widget in a notebook) and gathered.
    **kwargs
        Passed to ``dask.compute`` (``scheduler``, ``optimize_graph``, ...).

    Returns
    -------
    The computed results, one per task.
    """
    import dask
    import dask.threaded
    from dask.base import get_scheduler

    if not tasks:
        return ()
    scheduler = get_scheduler(scheduler=kwargs.get("scheduler"), collections=list(tasks))
    client = _distributed_client(scheduler)
    if client is not None:
        if not progress:
            return dask.compute(*tasks, **kwargs)
        return _compute_on_client(client, tasks, kwargs)
    if scheduler is dask.threaded.get:
        kwargs = {"scheduler": "threads", "pool": thread_pool(), **kwargs}
    if not progress:
        return dask.compute(*tasks, **kwargs)
    from dask.diagnostics import ProgressBar

    with ProgressBar(out=sys.stderr):
        return dask.compute(*tasks, **kwargs)


def _compute_on_client(client: Any, tasks: tuple, kwargs: dict[str, Any]) -> tuple:
    """Compute ``tasks`` on a distributed client, showing ``distributed.progress``."""
    import distributed

    options = {k: v for k, v in kwargs.items() if k != "scheduler"}
    futures = client.compute(list(tasks), **options)
    try:
        # In a console distributed's text bar blocks until the futures finish, writing to
        # stdout; in a notebook a widget is returned at once, to be displayed.
        with contextlib.redirect_stdout(sys.stderr):
            try:
                widget = distributed.progress(futures)
            except ImportError:  # a notebook without ipywidgets
                widget = distributed.progress(futures, notebook=False)
        if widget is not None:
            from IPython.display import display

            display(widget)
        return tuple(client.gather(futures))
    finally:
        for future in futures:
            future.release()


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
