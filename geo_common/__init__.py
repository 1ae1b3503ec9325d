"""Pieces both services share: settings, tokens, the database schema and the GeoNames places."""
