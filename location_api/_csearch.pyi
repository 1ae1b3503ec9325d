from collections.abc import Callable
from typing import Any

def plain_search(
    raw: str, min_radius_m: float, max_radius_m: float, default_radius_m: float, default_limit: int, max_limit: int, /
) -> tuple[float, float, float, int] | None: ...
def search_body(
    total: int,
    radius_m: float,
    hits: list[tuple[int, float]],
    prefixes: list[bytes | None] | dict[int, bytes],
    next_cursor: str | None,
    dumps: Callable[[Any], bytes],
    /,
) -> bytes: ...
def make_cursor(
    key: bytes,
    latitude: float,
    longitude: float,
    query_radius_m: float,
    expand: bool,
    category: str | None,
    radius_m: float,
    distance_m: float,
    business_id: int,
    /,
) -> str: ...
def plain_body(
    raw: str,
    min_radius_m: float,
    max_radius_m: float,
    default_radius_m: float,
    default_limit: int,
    max_limit: int,
    levels: tuple[tuple[Any, ...], ...],
    max_cells: int,
    prefixes: list[bytes | None] | dict[int, bytes],
    key: bytes,
    dumps: Callable[[Any], bytes],
    /,
) -> bytes | None: ...
