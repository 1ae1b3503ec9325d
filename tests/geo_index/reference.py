"""The distance written out in Python: the reference ``geo_index.haversine_m`` (C, in
``geo_index/_query.c``) is held to bit for bit, operation for operation."""

from __future__ import annotations

import math

from geo_index.distance import EARTH_RADIUS_M, RAD


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance, metres, between two points given in degrees (see
    :data:`geo_index.distance.haversine_m`): longitude -180 is read as +180 first."""
    if lon1 == -180.0:
        lon1 = 180.0
    if lon2 == -180.0:
        lon2 = 180.0
    phi1 = lat1 * RAD
    phi2 = lat2 * RAD
    s_phi = math.sin((phi2 - phi1) * 0.5)
    s_lam = math.sin((lon2 * RAD - lon1 * RAD) * 0.5)
    a = s_phi * s_phi + math.cos(phi1) * math.cos(phi2) * s_lam * s_lam
    if a > 1.0:
        a = 1.0
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(a))
