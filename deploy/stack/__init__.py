"""``geo-stack``: a local PostgreSQL primary + streaming replica, Redis and a Redis Cluster."""
