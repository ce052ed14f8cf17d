"""What every console command shares: logging setup and one-line errors for user mistakes."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from nnunetv2.exceptions import NnUNetError


def run_cli(main: Callable[[], None]) -> None:
    """Run ``main``; a user error (NnUNetError) prints ``error: ...`` and exits 1 with no traceback."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        main()
    except NnUNetError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def default_num_processes() -> int:
    """Default of the ``-np`` flags: nnU-Net v2's 8, or fewer on a machine with fewer CPUs."""
    return min(8, os.cpu_count() or 1)
