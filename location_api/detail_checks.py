"""Checks of the fields a business's detail adds (:class:`location_api.models.BusinessDetails`):
contacts, price level and rating. Each returns the value to store or raises ``ValueError``
saying what is wrong; ``null`` is "not known" for all but ``review_count``."""

from __future__ import annotations

import math
import re

from yarl import URL

MAX_PHONE_CHARS = 32
MAX_WEBSITE_CHARS = 2048
MAX_REVIEW_COUNT = 2**31 - 1
_PHONE = re.compile(r"\+?[0-9 ()\-.]+")
_URL_TEXT = re.compile(r"[!-~]+")  # printable ASCII, no blanks: what a link may hold


def check_phone(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _PHONE.fullmatch(value) or len(value) > MAX_PHONE_CHARS:
        raise ValueError(
            f"must be a phone number of digits, spaces and + - ( ) ., at most {MAX_PHONE_CHARS} characters"
        )
    if sum(c.isdigit() for c in value) < 3:
        raise ValueError("must hold at least 3 digits")
    return value


def check_website(value: object) -> str | None:
    """An absolute ``http``/``https`` address with a host, without a login in it (a page that
    shows it would publish the login)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_WEBSITE_CHARS or not _URL_TEXT.fullmatch(value):
        raise ValueError(f"must be an http or https address without blanks, at most {MAX_WEBSITE_CHARS} characters")
    try:
        url = URL(value)
    except ValueError:
        raise ValueError("must be an http or https address") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an absolute http or https address, such as https://example.com/")
    if url.user is not None or url.password is not None:
        raise ValueError("must not hold a user name or password")
    return value


def _integer(value: object) -> int | None:
    """A JSON integer (``2.0`` is one too, as JSON Schema has it), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) else None


def check_price_level(value: object) -> int | None:
    if value is None:
        return None
    level = _integer(value)
    if level is None or not 1 <= level <= 4:
        raise ValueError("must be an integer from 1 (cheap) to 4 (very expensive), or null")
    return level


def check_rating(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("must be a number from 0 to 5, or null")
    if not 0 <= value <= 5:
        raise ValueError(f"must be from 0 to 5, got {value!r}")
    return float(value)


def check_review_count(value: object) -> int:
    count = _integer(value)
    if count is None or not 0 <= count <= MAX_REVIEW_COUNT:
        raise ValueError(f"must be an integer from 0 to {MAX_REVIEW_COUNT}")
    return count
