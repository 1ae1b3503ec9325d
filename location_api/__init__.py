"""The business search API: nearby search and business CRUD over HTTP (aiohttp)."""
