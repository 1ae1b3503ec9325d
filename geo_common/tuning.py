"""Process tuning: how a geo process has Python's garbage collector and Linux treat its memory.

One setting turns all of it on or off in every geo process: ``GEO_PROCESS_TUNING``
(``Settings.process_tuning``, on by default). Off, every method of :class:`ProcessTuning` does
nothing and the process runs with Python's and the kernel's defaults: a way to rule the
tuning out while chasing a problem, at the price of the stalls it exists to prevent.

What it does, per service (docs/deploy.md says the same for operators):

* ``geo-friends``, once at start-up (:meth:`ProcessTuning.at_server_start`): what exists is
  frozen and young collections run every 50,000 allocations instead of 700. A server holding
  thousands of sessions keeps millions of objects; with the default thresholds, short-lived
  futures that survive two young collections soon add up to a full collection, which walks
  them all on the event loop's thread (docs/benchmarks.md has the figures). With the higher
  threshold they die by reference counting first.
* ``geo-api``, around each catalog build (:meth:`ProcessTuning.building`): the collector is
  paused while the catalog's millions of objects are made and they are frozen once complete,
  so no collection ever walks them (:mod:`geo_common.gc_control`); after the build
  (:meth:`ProcessTuning.collapse_heap`) the heap is collapsed into 2 MiB pages
  (:mod:`geo_common.huge_pages`).

Callers go through this module, never through those two directly for the same purpose, so
that the setting holds everywhere, benchmarks included.
"""

from __future__ import annotations

import gc
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from geo_common import gc_control, huge_pages

#: ``gc.set_threshold`` of a server process: a young collection every 50,000 allocations
#: (Python's default: 700), a middle one every 20 young ones and a full one every 100 middle
#: ones (defaults: 10 and 10), so that full collections, which walk every object not frozen,
#: stay rare.
SERVER_THRESHOLDS = (50_000, 20, 100)


@dataclass(frozen=True, slots=True)
class ProcessTuning:
    """The process-wide tuning of one geo process, done or skipped as the setting says.

    Attributes:
        enabled: ``Settings.process_tuning`` (``GEO_PROCESS_TUNING``); ``False`` makes every
            method a no-op.
    """

    enabled: bool

    def at_server_start(self) -> None:
        """Tune the collector of a long-running server whose objects are mostly made at start-up.

        Collects once, freezes what is left (modules, the app: no later collection walks
        them) and sets :data:`SERVER_THRESHOLDS`. Reference counting still frees everything
        that is not in a cycle. Call it once, when the app has started.
        """
        if not self.enabled:
            return
        gc.collect()
        gc.freeze()
        gc.set_threshold(*SERVER_THRESHOLDS)

    def building(self) -> AbstractContextManager[None]:
        """A block that makes a large, long-lived structure (a catalog build).

        Returns:
            When enabled, :func:`geo_common.gc_control.paused` with ``freeze``: the collector
            paused for the block and, when the block succeeds, everything then alive frozen
            before it resumes. When not, a block that changes nothing.
        """
        return gc_control.paused(freeze=True) if self.enabled else nullcontext()

    def collapse_heap(self) -> huge_pages.Report | None:
        """Back the process's heap with 2 MiB pages (:func:`geo_common.huge_pages.collapse_heap`).

        Call it in a worker thread, after a build, once what the build replaced is freed
        (so that memory is not collapsed only to be given back).

        Returns:
            What was done (a kernel's refusal included), or ``None`` when not enabled.
        """
        return huge_pages.collapse_heap() if self.enabled else None
