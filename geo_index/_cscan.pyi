from collections.abc import Hashable
from typing import Any, TypeVar, overload

K = TypeVar("K", bound=Hashable)

Records = list[tuple[float, float, float, K]]
Cells = dict[int, tuple[list[Any], Records[K]]]
Hits = list[tuple[K, float]]
Paged = tuple[int, int, Hits[K]]
After = tuple[float, K] | None

@overload
def scan(vec_groups: list[Any], rec_groups: list[Records[K]], lat: float, lon: float, radius_m: float, limit: int | None, /) -> Hits[K]: ...
@overload
def scan(
    vec_groups: list[Any], rec_groups: list[Records[K]], lat: float, lon: float, radius_m: float, limit: int | None, after: After[K], /
) -> Paged[K]: ...
Spec = tuple[float, float, int, int, int, int, Cells[K]]

@overload
def scan_levels(levels: tuple[Spec[K], ...], max_cells: int, lat: float, lon: float, radius_m: float, limit: int | None, /) -> Hits[K]: ...
@overload
def scan_levels(
    levels: tuple[Spec[K], ...], max_cells: int, lat: float, lon: float, radius_m: float, limit: int | None, after: After[K], /
) -> Paged[K]: ...
