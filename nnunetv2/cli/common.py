"""What every console command shares: logging setup and one-line errors for user mistakes and OS faults."""

from __future__ import annotations

import errno
import logging
import os
import sys
from argparse import ArgumentParser, Namespace
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


def add_precision_arguments(parser: ArgumentParser, purpose: str) -> None:
    """Add the mutually exclusive ``--bf16`` / ``--fp32`` flags (the CPU network precision) for ``purpose``."""
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument(
        "--bf16",
        action="store_true",
        help=f"on the CPU, {purpose} in bfloat16 even where the CPU has no native bfloat16 (slow there); "
        "the default on CPUs with AVX512-BF16 or AMX, where it is about 2x faster",
    )
    precision.add_argument(
        "--fp32",
        action="store_true",
        help=f"on the CPU, {purpose} in float32 also where bfloat16 is the default (CPUs with native bfloat16)",
    )


def requested_cpu_bf16(args: Namespace) -> bool | None:
    """True for ``--bf16``, False for ``--fp32``, None (the CPU's default) for neither."""
    return True if args.bf16 else False if args.fp32 else None
