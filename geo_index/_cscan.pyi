from collections.abc import Hashable, Iterator
from typing import Any, TypeVar, overload

K = TypeVar("K", bound=Hashable)

Records = list[tuple[float, float, float, K]]

class CellMap:
    """int cell codes in [0, 2**64) -> cells, in one open-addressing table (_ccells.c)."""

    def __init__(self) -> None: ...
    def __len__(self) -> int: ...
    def __getitem__(self, code: int, /) -> Any: ...
    def __setitem__(self, code: int, cell: Any, /) -> None: ...
    def __delitem__(self, code: int, /) -> None: ...
    def __contains__(self, code: object, /) -> bool: ...
    def __iter__(self) -> Iterator[int]: ...
    def get(self, code: object, default: Any = None, /) -> Any: ...
    def keys(self) -> list[int]: ...
    def values(self) -> list[Any]: ...
    def items(self) -> list[tuple[int, Any]]: ...
    def clear(self) -> None: ...

Cells = dict[int, tuple[list[Any], Records[K]]] | CellMap
Hits = list[tuple[K, float]]
Paged = tuple[int, int, Hits[K]]
After = tuple[float, K] | None

@overload
def scan(
    vec_groups: list[Any], rec_groups: list[Records[K]], lat: float, lon: float, radius_m: float, limit: int | None, /
) -> Hits[K]: ...
@overload
def scan(
    vec_groups: list[Any],
    rec_groups: list[Records[K]],
    lat: float,
    lon: float,
    radius_m: float,
    limit: int | None,
    after: After[K],
    /,
) -> Paged[K]: ...

Spec = tuple[float, float, int, int, int, int, Cells[K]]

@overload
def scan_levels(
    levels: tuple[Spec[K], ...], max_cells: int, lat: float, lon: float, radius_m: float, limit: int | None, /
) -> Hits[K]: ...
@overload
def scan_levels(
    levels: tuple[Spec[K], ...],
    max_cells: int,
    lat: float,
    lon: float,
    radius_m: float,
    limit: int | None,
    after: After[K],
    /,
) -> Paged[K]: ...
