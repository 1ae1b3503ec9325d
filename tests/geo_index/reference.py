"""The geometry written out in Python: the references ``geo_index.haversine_m`` (C, in
``geo_index/_exact.c``) and ``geo_index.box_circle`` (``geo_index/_box.c``) are held to bit
for bit, operation for operation."""

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


def box_circle(west: float, south: float, east: float, north: float) -> tuple[float, float, float]:
    """A box's centre (its middle; the pole of a polar cap) and the distance from there to its
    farthest point (see :data:`geo_index.distance.box_circle`)."""
    width = east - west
    if width < 0.0:
        width += 360.0
    if width == 360.0 and north == 90.0:
        lat, lon = 90.0, 0.0
    elif width == 360.0 and south == -90.0:
        lat, lon = -90.0, 0.0
    else:
        lat, lon = (south + north) / 2.0, west + width / 2.0
        if lon > 180.0:
            lon -= 360.0
    farthest = 0.0
    for edge in (west, east):
        for corner in (south, north):
            farthest = max(farthest, haversine_m(lat, lon, corner, edge))
        # Along a meridian cos(distance) = a sin(phi) + b cos(phi): one extreme in (-90, 90),
        # at tan(phi) = a / b, a farthest point when b < 0.
        a = math.sin(math.radians(lat))
        b = math.cos(math.radians(lat)) * math.cos(math.radians(edge - lon))
        if b < 0.0:
            phi = math.degrees(math.atan(a / b))
            if south < phi < north:
                farthest = max(farthest, haversine_m(lat, lon, phi, edge))
    return lat, lon, farthest
