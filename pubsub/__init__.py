"""Pub/sub over Redis: one node, a hash ring of nodes, or Redis Cluster sharded pub/sub."""
