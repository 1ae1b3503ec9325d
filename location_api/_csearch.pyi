from collections.abc import Callable
from typing import Any

#: (min_radius_m, max_radius_m, default_radius_m, default_limit, max_limit)
Limits = tuple[float, float, float, int, int]

def plain_search(raw: str, limits: Limits, /) -> tuple[float, float, float, int] | None: ...
def search_body(
    total: int,
    radius_m: float,
    hits: list[tuple[int, float]],
    prefixes: list[bytes | None] | dict[int, bytes],
    next_cursor: str | None,
    dumps: Callable[[Any], bytes],
    /,
) -> bytes: ...
def plain_body(
    raw: str,
    limits: Limits,
    index: Any,
    prefixes: list[bytes | None] | dict[int, bytes],
    key: bytes,
    encode_cursor: Callable[..., str],
    dumps: Callable[[Any], bytes],
    /,
) -> bytes | None: ...
def area_search(raw: str, limits: Limits, /) -> tuple[float, float, float, float, int] | None: ...
def area_body(
    raw: str,
    limits: Limits,
    index: Any,
    prefixes: list[bytes | None] | dict[int, bytes],
    key: bytes,
    encode_cursor: Callable[..., str],
    dumps: Callable[[Any], bytes],
    refinements_of: Callable[[float, float, float, float], bytes],
    /,
) -> bytes | None: ...
