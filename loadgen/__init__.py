"""The location load generator for the search API and the friends WebSocket tier."""
