"""Consistent hashing: placement is stable, even, and a change moves about 1/N."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pubsub.hashring import HashRing

CHANNELS = [f"geo:default:loc:{{{i}}}" for i in range(20_000)]


def test_placement_is_deterministic_and_order_free() -> None:
    a = HashRing(["r1", "r2", "r3"])
    b = HashRing(["r3", "r1", "r2"])
    assert all(a.node_for(c) == b.node_for(c) for c in CHANNELS[:2000])


def test_shares_are_even() -> None:
    shares = HashRing([f"redis://10.0.0.{i}:6379" for i in range(4)]).shares(CHANNELS)
    mean = len(CHANNELS) / 4
    assert all(abs(n - mean) / mean < 0.15 for n in shares.values()), shares


def test_adding_a_node_moves_about_one_nth_and_only_to_it() -> None:
    before = HashRing(["r1", "r2", "r3"])
    after = before.with_nodes(["r1", "r2", "r3", "r4"])
    moved = before.moved(after, CHANNELS)
    assert 0.20 < len(moved) / len(CHANNELS) < 0.30
    assert {new for _old, new in moved.values()} == {"r4"}


def test_removing_a_node_moves_only_its_channels() -> None:
    before = HashRing(["r1", "r2", "r3", "r4"])
    after = before.with_nodes(["r1", "r2", "r4"])
    moved = before.moved(after, CHANNELS)
    assert {old for old, _new in moved.values()} == {"r3"}
    assert len(moved) == before.shares(CHANNELS)["r3"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=6, unique=True), st.text(max_size=40))
def test_the_owner_is_always_a_node(nodes: list[str], channel: str) -> None:
    assert HashRing(nodes, vnodes=8).node_for(channel) in nodes


@pytest.mark.parametrize("nodes", [[], ["a", "a"]])
def test_bad_rings_are_refused(nodes: list[str]) -> None:
    with pytest.raises(ValueError):
        HashRing(nodes)
