"""``python -m xzaro.cli``: the ``xzaro`` command."""

from __future__ import annotations

import sys

from xzaro.cli.app import main

sys.exit(main())
