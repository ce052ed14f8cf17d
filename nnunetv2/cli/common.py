"""What every console command shares: logging setup and one-line errors for user mistakes and OS faults."""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Callable

from nnunetv2.exceptions import NnUNetError


def describe_os_error(error: OSError) -> str:
    """Return one line for an OS error: the path(s) it concerns and the OS's reason."""
    reason = error.strerror or (str(error).strip().splitlines() or [type(error).__name__])[0]
    if error.errno == errno.ENOSPC:
        reason += " (free some space and run the command again; completed outputs are kept)"
    paths = [p for p in (error.filename, error.filename2) if p is not None]
    return f"{' -> '.join(os.fsdecode(p) for p in paths)}: {reason}" if paths else reason


def run_cli(main: Callable[[], None]) -> None:
    """Run ``main``; user errors and OS errors print one ``error: ...`` line and exit 1, with no traceback.

    Ctrl-C exits 130 with one line (worker processes ignore SIGINT, see utilities.process_pool).
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        main()
    except NnUNetError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print(f"error: {describe_os_error(e)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def default_num_processes() -> int:
    """Default of the ``-np`` flags: nnU-Net v2's 8, or fewer on a machine with fewer CPUs."""
    return min(8, os.cpu_count() or 1)
