"""Keeping the collector away from large structures (geo_common.gc_control): pausing and freezing,
and taking a structure apart a piece at a time."""

from __future__ import annotations

import gc
import weakref

import pytest

from geo_common import gc_control


class _Node:
    __slots__ = ("__weakref__", "children", "payload")

    def __init__(self, children: list[_Node], payload: object) -> None:
        self.children = children
        self.payload = payload


class _Bag:
    """An object with a ``__dict__``, that a weak reference can follow."""

    def __init__(self, **attrs: object) -> None:
        self.__dict__.update(attrs)


def _young(obj: object) -> bool:
    """Is ``obj`` in one of the collector's generations (not frozen)?"""
    return any(o is obj for o in gc.get_objects())


def test_a_pause_with_freeze_freezes_what_it_made_only_when_the_block_succeeds() -> None:
    assert gc.isenabled()
    before = gc.get_freeze_count()
    try:
        with gc_control.paused(freeze=True):
            assert not gc.isenabled()
            made = [[i] for i in range(100)]
        assert gc.isenabled()
        assert not _young(made) and not _young(made[50]) and gc.get_freeze_count() >= before + 101
        with pytest.raises(ValueError), gc_control.paused(freeze=True):
            failed = [[i] for i in range(100)]
            raise ValueError
        assert gc.isenabled() and _young(failed)
        with gc_control.paused():  # nested pauses: only the outer one resumes
            with gc_control.paused(freeze=True):
                inner = [[1]]
            assert not gc.isenabled() and not _young(inner)
        assert gc.isenabled()
    finally:
        gc.enable()  # (the few objects frozen here stay so: unfreezing would also hand back every catalog this process froze)


def test_dismantle_frees_every_part_of_a_nested_structure() -> None:
    step = 16
    leaves = [_Bag(n=i) for i in range(1000)]
    big_dict = {i: (leaf, [leaf]) for i, leaf in enumerate(leaves)}
    deep = _Node([_Node([], [_Bag(n=-1) for _ in range(100)]) for _ in range(4)], {"x": list(range(50))})
    root = _Bag(table=big_dict, rows=[list(range(40)) for _ in range(40)], tree=deep, pair=(big_dict, leaves[:10]))
    refs = [weakref.ref(o) for o in (root, deep, leaves[0], leaves[999], deep.children[3].payload[99])]
    refs += [weakref.ref(node) for node in deep.children]  # type: ignore[arg-type]
    del leaves, big_dict, deep
    gc_control.dismantle(root, step)
    assert not root.__dict__  # emptied
    del root
    assert [r() for r in refs] == [None] * len(refs)  # freed by reference counts: no collection needed


def test_dismantle_empties_the_frame_and_leaves_the_many_small_objects_whole() -> None:
    step = 8
    nested = [[i] for i in range(20)]  # longer than a step, inside a list longer than a step
    big = [[i] for i in range(100)] + [nested]
    inner = {i: i for i in range(50)}
    kept = _Bag(note="still used elsewhere")
    holder = {"big": big, "inner": inner, "pair": ([1, 2, 3], big), "many": [kept] + [_Bag() for _ in range(99)]}
    gc_control.dismantle(holder, step)
    assert holder == {} and big == [] and nested == [] and inner == {}
    assert kept.note == "still used elsewhere"  # held by a large list: released, not looked into
