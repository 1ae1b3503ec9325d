"""The error hierarchy of :mod:`geo_index`.

Every error derives from :class:`GeoIndexError` and also from the built-in exception a caller
would expect, so ``except ValueError`` and ``except KeyError`` keep working:

* bad input (coordinates, radii, counts, duplicate ids) raises a :class:`ValueError` subclass
  whose message names the offending argument;
* removing or moving an id the index does not hold raises :class:`UnknownId`, a
  :class:`KeyError`.
"""

from __future__ import annotations


class GeoIndexError(Exception):
    """Base class of every error raised by :mod:`geo_index`."""


class InvalidCoordinate(GeoIndexError, ValueError):
    """A latitude or longitude is not a finite number in range.

    Latitude must lie in [-90, 90] degrees and longitude in [-180, 180] degrees.
    """


class InvalidRadius(GeoIndexError, ValueError):
    """A radius (metres) is not finite, not positive, or above the index's maximum."""


class InvalidCount(GeoIndexError, ValueError):
    """A count (``k``, ``limit``) is not an integer >= 1."""


class InvalidPosition(GeoIndexError, ValueError):
    """``page``'s ``after`` is not ``None`` or a ``(distance_m, id)`` pair with a real distance."""


class InvalidOption(GeoIndexError, ValueError):
    """A constructor option of an index is out of range."""


class InvalidId(GeoIndexError, ValueError):
    """A point's id is not an integer in the signed 64-bit range."""


class DuplicateId(GeoIndexError, ValueError):
    """``insert`` or ``bulk_load`` was given an id the index already holds (use ``move``)."""


class UnknownId(GeoIndexError, KeyError):
    """``remove`` or ``move`` was given an id the index does not hold."""

    def __str__(self) -> str:
        # KeyError.__str__ repr()s its argument, which would wrap the message in quotes.
        return str(self.args[0]) if self.args else ""
