"""The ``xzaro`` logger: messages read ``[zaro] ...`` and are off unless asked for."""

from __future__ import annotations

import logging

logger = logging.getLogger("xzaro")
logger.addHandler(logging.NullHandler())

_handler: logging.Handler | None = None


def enable_verbose(verbose: bool = True) -> None:
    """Send xzaro's INFO messages to stderr (``verbose=True`` on the open functions does this)."""
    global _handler
    if not verbose:
        return
    if _handler is None:
        _handler = logging.StreamHandler()
        _handler.setFormatter(logging.Formatter("[zaro] %(message)s"))
        logger.addHandler(_handler)
    if logger.getEffectiveLevel() > logging.INFO or logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def info(msg: str, *args: object) -> None:
    """Log ``msg`` at INFO level on the xzaro logger."""
    logger.info(msg, *args)
