from collections.abc import Hashable, Sequence
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)

def scan(
    vec_groups: list[Any],
    rec_groups: list[list[tuple[float, float, float, K]]],
    lat: float,
    lon: float,
    radius_m: float,
    limit: int | None,
    /,
) -> list[tuple[K, float]]: ...

def scan_grid(
    cells: dict[int, tuple[list[Any], list[tuple[float, float, float, K]]]],
    srows: list[int],
    scols: list[int],
    lat: float,
    lon: float,
    radius_m: float,
    limit: int | None,
    /,
) -> list[tuple[K, float]]: ...
