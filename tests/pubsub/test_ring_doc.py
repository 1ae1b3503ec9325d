"""The ring as etcd keeps it: keys, documents, edits and the live-node decision (pure)."""

from __future__ import annotations

import pytest

from pubsub.ring_doc import MISSES_BEFORE_REMOVAL, RingDoc, RingDocError, RingKeys, live_nodes, same_nodes

A, B, C = "redis://10.0.0.1:6379", "redis://10.0.0.2:6379", "redis://10.0.0.3:6379"


def test_keys_are_under_the_namespace_and_region() -> None:
    keys = RingKeys("geo", "emea")
    assert keys.members == b"/geo/geo/ring/emea/members"
    assert keys.live == b"/geo/geo/ring/emea/live"
    assert keys.leader == b"/geo/geo/ring/emea/leader"
    # A slash in a name cannot reach another deployment's or region's keys.
    assert RingKeys("a/b", "c").prefix == b"/geo/a%2Fb/ring/c/"
    assert RingKeys("a", "b/c").prefix != RingKeys("a/b", "c").prefix


def test_a_document_round_trips() -> None:
    doc = RingDoc((A, "rediss://geo:s3cret@10.0.0.2:6380"), 7)
    assert RingDoc.decode(doc.encode()) == doc
    assert RingDoc.decode(b'{"nodes": ["redis://h:1"]}') == RingDoc(("redis://h:1",), 1)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"not json", "JSON"),
        (b"[]", "object"),
        (b'{"nodes": "redis://h:1"}', "list"),
        (b'{"nodes": []}', "at least one"),
        (b'{"nodes": ["http://h:1"]}', "redis://"),
        (b'{"nodes": ["redis://h:port"]}', "expected"),
        (b'{"nodes": ["redis://h:1", "redis://u:p@h:1"]}', "twice"),
        (b'{"nodes": ["redis://h:1"], "version": 0}', "version"),
        (b'{"nodes": ["redis://h:1"], "version": true}', "version"),
    ],
)
def test_a_bad_document_is_refused_by_name(raw: bytes, says: str) -> None:
    with pytest.raises(RingDocError, match=says):
        RingDoc.decode(raw)


def test_a_refusal_never_shows_a_password() -> None:
    with pytest.raises(RingDocError) as refused:
        RingDoc(("http://geo:s3cret@h:1",))
    assert "s3cret" not in str(refused.value)
    with pytest.raises(RingDocError) as twice:
        RingDoc(("redis://geo:s3cret@h:1", "redis://h:1"))
    assert "s3cret" not in str(twice.value)


def test_edits_raise_the_version_and_keep_the_order() -> None:
    doc = RingDoc((A, B), 3)
    added = doc.with_node(C)
    assert added == RingDoc((A, B, C), 4)
    # Adding a node again with new credentials replaces it (one node, the new login).
    relogged = added.with_node("redis://geo:new@10.0.0.1:6379")
    assert relogged.nodes == (B, C, "redis://geo:new@10.0.0.1:6379")
    assert added.without_node("redis://x:y@10.0.0.2:6379") == RingDoc((A, C), 5)


def test_an_edit_never_empties_the_ring_nor_removes_a_stranger() -> None:
    with pytest.raises(RingDocError, match="last node"):
        RingDoc((A,)).without_node(A)
    with pytest.raises(RingDocError, match="not a node"):
        RingDoc((A, B)).without_node(C)
    with pytest.raises(RingDocError, match="redis://"):
        RingDoc((A,)).with_node("10.0.0.9:6379")


def test_a_node_is_live_until_it_misses_enough_probes_in_a_row() -> None:
    members = (A, B, C)
    assert live_nodes(members, {}, members) == members
    almost = {B: MISSES_BEFORE_REMOVAL - 1}
    assert live_nodes(members, almost, members) == members
    dead = {B: MISSES_BEFORE_REMOVAL}
    assert live_nodes(members, dead, members) == (A, C)
    # Answering again (misses back to 0) puts it back, in the members' order.
    assert live_nodes(members, {B: 0}, (A, C)) == members
    # A member never probed yet (just added) is live.
    assert live_nodes((*members, "redis://10.0.0.4:6379"), {}, members)[-1] == "redis://10.0.0.4:6379"


def test_the_ring_is_never_left_empty() -> None:
    every = {A: MISSES_BEFORE_REMOVAL, B: MISSES_BEFORE_REMOVAL + 5}
    assert live_nodes((A, B), every, (B,)) == (B,)


def test_same_nodes_ignores_credentials_and_order() -> None:
    assert same_nodes(["redis://u:p@10.0.0.1:6379", B], [B, A])
    assert not same_nodes([A], [A, B])
