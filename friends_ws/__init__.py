"""The nearby-friends WebSocket tier."""
