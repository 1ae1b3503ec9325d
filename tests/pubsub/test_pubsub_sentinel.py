"""``redis+sentinel://`` URLs and sentinels' answers, against fixed values (no I/O).

The failover itself, real processes end to end, is tests/deploy/test_location_failover.py.
"""

from __future__ import annotations

import hiredis
import pytest

from geo_common.settings import Settings, SettingsError
from pubsub.address import NodeAddress
from pubsub.sentinel import node_for_url, parse_sentinel_url, primary_from_reply, primary_request


def test_a_sentinel_url_names_the_sentinels_the_primary_and_its_login() -> None:
    service = parse_sentinel_url("redis+sentinel://geo:s%40cret@s1:26379,s2:26380,s3/geo-locations/2")
    assert [s.name for s in service.sentinels] == ["s1:26379", "s2:26380", "s3:26379"]
    assert all(s.password is None and s.username is None for s in service.sentinels)  # asked without a login
    assert service.primary == "geo-locations" and service.db == 2
    primary = service.at("10.0.0.7", 6379)
    assert (primary.host, primary.port, primary.username, primary.password) == ("10.0.0.7", 6379, "geo", "s@cret")
    assert "s@cret" not in repr(service) and "s@cret" not in service.name


def test_tls_applies_to_the_sentinels_and_the_primary() -> None:
    service = parse_sentinel_url("rediss+sentinel://:pw@s1:26379/geo", tls_ca="/ca.pem")
    assert service.sentinels[0].tls and service.sentinels[0].tls_ca == "/ca.pem"
    assert service.at("p", 6379).tls and service.at("p", 6379).password == "pw"


@pytest.mark.parametrize(
    "url",
    [
        "redis://h:6379/0",
        "redis+sentinel://geo:hunter2@s1:26379",  # no primary name
        "redis+sentinel://geo:hunter2@s1:26379/",
        "redis+sentinel://geo:hunter2@s1:port/geo",
        "redis+sentinel://geo:hunter2@s1:26379,/geo",
        "redis+sentinel://geo:hunter2@s1:26379/geo/zero",
        "redis+sentinel://geo:hunter2@s1:70000/geo",
    ],
)
def test_a_malformed_sentinel_url_is_refused_without_its_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_sentinel_url(url)
    assert "hunter2" not in str(caught.value)


def test_a_plain_url_has_no_locator_and_a_sentinel_url_has_one() -> None:
    address, locate = node_for_url("redis://h:6379/0")
    assert address == NodeAddress("h", 6379) and locate is None
    address, locate = node_for_url("redis+sentinel://s1:26379/geo")
    assert locate is not None and address.name == "s1:26379"  # shown until the primary is found


def test_a_sentinels_answer_is_read() -> None:
    assert primary_request("geo") == b"*3\r\n$8\r\nSENTINEL\r\n$23\r\nget-master-addr-by-name\r\n$3\r\ngeo\r\n"
    assert primary_from_reply([b"10.0.0.7", b"6379"]) == ("10.0.0.7", 6379)
    assert primary_from_reply(None) is None  # it does not know the name
    with pytest.raises(ValueError, match="refused"):
        primary_from_reply(hiredis.ReplyError("ERR unknown command"))
    with pytest.raises(ValueError, match="unexpected"):
        primary_from_reply([b"10.0.0.7", b"port"])


def test_settings_accept_a_sentinel_url_and_name_the_variable_of_a_bad_one() -> None:
    url = "redis+sentinel://geo:pw@s1:26379,s2:26379,s3:26379/geo-locations/0"
    assert Settings.from_env({"GEO_REDIS_URL": url}).redis_url == url
    assert Settings.from_env({"GEO_API_CACHE_URL": "redis://cache:6379/0"}).api_cache_url == "redis://cache:6379/0"
    with pytest.raises(SettingsError, match="^GEO_REDIS_URL=") as caught:
        Settings.from_env({"GEO_REDIS_URL": "redis+sentinel://geo:hunter2@s1:26379"})
    assert "hunter2" not in str(caught.value)
    with pytest.raises(SettingsError, match="^GEO_API_CACHE_URL="):
        Settings.from_env({"GEO_API_CACHE_URL": "http://cache"})
    regions = '{"eu": {"redis_url": "redis+sentinel://s1:26379/geo-eu"}}'
    assert Settings.from_env({"GEO_REGIONS": regions}).regions[0].redis_url == "redis+sentinel://s1:26379/geo-eu"
    with pytest.raises(SettingsError, match="^GEO_REGIONS="):
        Settings.from_env({"GEO_REGIONS": '{"eu": {"redis_url": "redis+sentinel://s1:26379"}}'})
