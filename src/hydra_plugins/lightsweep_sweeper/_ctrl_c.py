"""Ctrl-C during a sweep. While jobs run it stops them at once, as usual; while the sweeper itself writes
to the study it waits for the next safe point, because a KeyboardInterrupt inside a storage write can
leave SQLite's write lock held by a dangling connection (seen: "database is locked" a minute later, when
the interrupted trial is recorded). And it is noticed however it surfaces: raised while Hydra composes a
job's config it can leave an object half-updated, so that what reaches the sweeper is another error
(seen: an AttributeError from OmegaConf's flags) or a failed job, and that trial is still interrupted."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any


class CtrlCWatch:
    """`with watch:` notes each SIGINT in `watch.seen`; it raises KeyboardInterrupt inside
    `watch.raising()`, and at `watch.check()` elsewhere."""

    def __init__(self) -> None:
        self.seen = False
        self._raising = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> CtrlCWatch:
        self.seen = False
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self._previous, self._installed = signal.signal(signal.SIGINT, self._note), True
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.SIG_DFL)
            self._installed = False

    @contextmanager
    def raising(self) -> Iterator[None]:
        self.check()
        self._raising = True
        try:
            yield
        finally:
            self._raising = False

    def check(self) -> None:
        if self.seen:
            raise KeyboardInterrupt

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.seen = True
        if not self._raising:
            return
        if callable(self._previous):  # Python's default_int_handler raises KeyboardInterrupt
            self._previous(signum, frame)
        elif self._previous != signal.SIG_IGN:
            raise KeyboardInterrupt
