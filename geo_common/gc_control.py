"""Keeping Python's cyclic garbage collector away from a large structure's millions of objects.

Every collection of the oldest generation walks every container object the process holds,
and location_api's catalog of a million businesses is several million of them: one such walk
takes a second or more, on the event loop's thread. So the objects such a build makes are never
walked: the collector is paused while they are made, and when they are complete they are
moved to the permanent generation (:func:`gc.freeze`), which no collection visits, before
the collector resumes. Resuming first would hand the next collection of the youngest
generation every object made during the pause, which is exactly the walk avoided. Whether a
process pauses and freezes at all is :mod:`geo_common.tuning`'s decision (GEO_PROCESS_TUNING).

Freeing such a structure is the same cost the other way round: dropping the last reference to
a catalog frees millions of objects in one call, which no other thread can interrupt.
:func:`dismantle` frees it a few thousand references at a time instead, in a worker thread,
so the event loop gets its turns in between.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: The containers :func:`dismantle` empties.
_EMPTIED: tuple[type, ...] = (list, dict)

#: How many references :func:`dismantle` drops at once; also the size from which a list or
#: dict held by another is taken apart on its own.
STEP = 4096
#: Containers at most this long are looked into for objects holding more.
_SMALL = 64


@contextmanager
def paused(*, freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic collector (if it runs) for the block, and restore it afterwards.

    Nothing is collected while paused: garbage with reference cycles waits (objects without
    cycles are freed by their reference counts as usual). Pauses nest: only the outermost
    one, the one that found the collector running, resumes it.

    Args:
        freeze: when the block ends without an exception, first move every object then
            tracked to the permanent generation: the objects the block made, and whatever
            else is alive, which is then never collected, even once it becomes cyclic
            garbage (use it where what the block made is long-lived and little else was
            allocated meanwhile). After an exception nothing is frozen.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if freeze:
            gc.freeze()
    finally:
        if was_enabled:
            gc.enable()


def dismantle(root: Any, step: int = STEP) -> None:
    """Free a large structure a piece at a time (call it in a worker thread, as its sole owner).

    Lists, dicts and cell maps are emptied ``step`` references at a time; one among them
    longer than ``step`` is taken apart the same way rather than freed at once. The few
    objects of the structure's frame (those held by lists, dicts and tuples of at most a few
    dozen items, and by instance attributes) are looked into for more; the millions of small
    objects held by large containers are simply released. ``root`` and every object looked
    into must not be used afterwards: their attributes, lists and dicts are emptied.

    Args:
        root: the structure.
        step: references dropped per call into the interpreter.
    """
    pending = [root]
    while pending:
        obj = pending.pop()
        items = _take_contents(obj)
        small = len(items) <= _SMALL
        while items:
            chunk = items[-step:]
            del items[-step:]
            for item in chunk:
                if small or (type(item) in _EMPTIED and len(item) > step):
                    pending.append(item)
            del chunk


def _take_contents(obj: Any) -> list[Any]:
    """What ``obj`` holds, as a new list, after emptying ``obj`` where it can be emptied."""
    kind = type(obj)
    if kind is list:
        items: list[Any] = obj[:]
        obj.clear()  # drops its references: items holds them all
        return items
    if kind is dict:
        items = [*obj.keys(), *obj.values()]
        obj.clear()
        return items
    if kind is tuple:
        return list(obj)  # freed with the last reference to the tuple
    if kind in (str, bytes, int, float, bool) or obj is None:
        return []
    items = []
    attrs = getattr(obj, "__dict__", None)
    if type(attrs) is dict:
        items.append(attrs)
    for klass in kind.__mro__:
        for name in getattr(klass, "__slots__", ()):
            if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                items.append(getattr(obj, name))
    return items
