"""Progress that reads well both in a terminal and in a redirected log.

In a terminal (stderr is a TTY) ``progress_bar`` is a tqdm bar. Redirected to a file or a pipe, a bar's
carriage-return redraws pile up into one unreadable line, so there it is a ``PlainProgress``: a
plain log line at each quarter of the total (and at the end) with the count, the unit and the
elapsed time. Both count what their ``unit`` names and take the same calls (``update``,
``set_postfix_str``, ``close``, iteration, ``with``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

PLAIN_STEPS = 4  # plain lines per run of a redirected progress: at 25, 50, 75 and 100 %


def output_is_terminal() -> bool:
    """Whether progress is seen live: stderr is an interactive terminal."""
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None) and stream.isatty())


class PlainProgress:
    """A progress counter that logs a plain line at each quarter of ``total`` instead of redrawing a bar."""

    def __init__(
        self, iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "it"
    ) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0
        self.postfix = ""
        self._start = time.perf_counter()
        self._next_step = 1

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units; log a line when a quarter of the total is crossed."""
        self.n += n
        if not self.total:
            return
        crossed = min(PLAIN_STEPS, self.n * PLAIN_STEPS // self.total)
        if crossed < self._next_step:
            return
        self._next_step = crossed + 1  # one line however many quarters one update crosses
        elapsed = time.perf_counter() - self._start
        postfix = f" ({self.postfix})" if self.postfix else ""
        logger.info(
            "%s: %d/%d %s(s), %.0f%%, %.1f s%s",
            self.desc,
            self.n,
            self.total,
            self.unit,
            100 * self.n / self.total,
            elapsed,
            postfix,
        )

    def set_postfix_str(self, text: str) -> None:
        """Note what is being worked on (shown in the next line)."""
        self.postfix = text

    def close(self) -> None:
        """Nothing to clear: every line is final."""

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    disable: bool = False,
    plain: bool | None = None,
    **tqdm_options: Any,
):
    """Return a tqdm bar in a terminal, a PlainProgress when the output is redirected (``plain`` forces either),
    or a silent tqdm when ``disable``; ``tqdm_options`` (e.g. ``leave``) go to the bar."""
    from tqdm import tqdm

    if disable:
        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=True)
    if plain if plain is not None else not output_is_terminal():
        return PlainProgress(iterable, total, desc, unit)
    return tqdm(iterable, total=total, desc=desc, unit=unit, **tqdm_options)
