"""``rediss://``: every backend and cache client against real redis-server processes serving TLS.

The project's ``redis-server`` (Debian's, found by :mod:`deploy.stack.binaries`) is built with
TLS. Each test's nodes serve TLS only, with a certificate for ``127.0.0.1`` and ``localhost``
signed by a CA made for the test, and require a password, so a client that works here both
verified the server (against the CA given as ``tls_ca``, ``GEO_REDIS_TLS_CA``) and logged in.
A client that does not trust the CA, or reaches a server whose certificate names another
host, connects to nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.exceptions import ConnectionError as RedisConnectionError

from deploy.stack import redis_nodes
from deploy.stack.binaries import Binaries
from deploy.stack.redis_nodes import RedisNode, RedisTls
from friends_ws.cache import LocationCache
from geo_common.presence import Location
from geo_common.regions import RegionMap
from geo_common.settings import Settings
from location_api.cache import Cache
from pubsub import ClusterPubSub, RedisPubSub, RingPubSub, open_redis
from pubsub.client import ConnectionLost, RedisClient
from tests.pubsub.pubsub_helpers import FAST, Collector, eventually
from tests.ports import free_port

PASSWORD = f"tls-{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Pki:
    """A test CA, the server files it signed, and a CA nobody used."""

    ca: Path
    server: RedisTls
    wrong_name: RedisTls
    stranger_ca: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _server(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, names: list[x509.GeneralName], folder: Path, stem: str
) -> RedisTls:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "redis")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        # Client use too: cluster nodes present their certificate to each other on the bus.
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return RedisTls(
        cert=_write_cert(cert, folder / f"{stem}.pem"),
        key=_write_key(key, folder / f"{stem}.key"),
        ca=folder / "ca.pem",
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, ca_key = _ca("geo test CA")
    _write_cert(ca, folder / "ca.pem")
    loopback = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    stranger, _ = _ca("nobody's CA")
    return Pki(
        ca=folder / "ca.pem",
        server=_server(ca, ca_key, loopback, folder, "server"),
        wrong_name=_server(ca, ca_key, [x509.DNSName("redis.example.org")], folder, "elsewhere"),
        stranger_ca=_write_cert(stranger, folder / "stranger.pem"),
    )


TlsFactory = Callable[..., Awaitable[RedisNode]]


@pytest.fixture
async def tls_redis(redis_bins: Binaries, pki: Pki, tmp_path: Path) -> AsyncIterator[TlsFactory]:
    """Start redis-server processes serving TLS only (with a password); all are stopped at the end."""
    started: list[RedisNode] = []

    async def start(*, cluster: bool = False, tls: RedisTls | None = None) -> RedisNode:
        port = free_port(cluster=cluster)
        node = RedisNode(
            f"tls-{port}", tmp_path / str(port), port, cluster=cluster, password=PASSWORD, tls=tls or pki.server
        )
        await asyncio.to_thread(redis_nodes.start, redis_bins, node)
        started.append(node)
        return node

    yield start
    for node in started:
        await asyncio.to_thread(redis_nodes.stop, node)


def url(node: RedisNode, scheme: str = "rediss") -> str:
    return f"{scheme}://:{PASSWORD}@127.0.0.1:{node.port}/0"


async def test_the_redis_backend_speaks_tls_verified_against_the_ca(tls_redis: TlsFactory, pki: Pki) -> None:
    node = await tls_redis()
    got = Collector()
    async with RedisPubSub(url(node), on_message=got, tls_ca=str(pki.ca), **FAST) as bus:
        await bus.subscribe(["tls:a"])
        assert await bus.publish("tls:a", b"over tls") == 1
        await eventually(lambda: got.data() == [b"over tls"], "the message")
        assert await bus.ping()


@pytest.mark.parametrize("trusted", ["system", "stranger"])
async def test_a_server_the_client_does_not_trust_is_not_talked_to(
    tls_redis: TlsFactory, pki: Pki, trusted: str
) -> None:
    node = await tls_redis()
    ca = None if trusted == "system" else str(pki.stranger_ca)
    client = RedisClient.from_url(url(node), tls_ca=ca, connect_timeout_s=2.0)
    try:
        with pytest.raises(ConnectionLost, match="CERTIFICATE_VERIFY_FAILED"):
            await client.execute("PING", retries=0)
    finally:
        await client.close()
    async with RedisPubSub(url(node), on_message=Collector(), tls_ca=ca, **FAST) as bus:
        assert not await bus.ping()


async def test_a_certificate_for_another_host_is_refused(tls_redis: TlsFactory, pki: Pki) -> None:
    node = await tls_redis(tls=pki.wrong_name)
    client = RedisClient.from_url(url(node), tls_ca=str(pki.ca), connect_timeout_s=2.0)
    try:
        with pytest.raises(ConnectionLost, match="IP address mismatch|Hostname mismatch"):
            await client.execute("PING", retries=0)
    finally:
        await client.close()


async def test_plain_redis_to_a_tls_port_does_not_work(tls_redis: TlsFactory) -> None:
    node = await tls_redis()
    client = RedisClient.from_url(url(node, "redis"), connect_timeout_s=1.0, command_timeout_s=1.0)
    try:
        with pytest.raises(ConnectionLost):
            await client.execute("PING", retries=0)
    finally:
        await client.close()


async def test_the_ring_speaks_tls_to_every_node(tls_redis: TlsFactory, pki: Pki) -> None:
    nodes = [await tls_redis() for _ in range(2)]
    channels = [f"tls:ring:{{{i}}}" for i in range(40)]
    got = Collector()
    async with RingPubSub([url(n) for n in nodes], on_message=got, tls_ca=str(pki.ca), **FAST) as bus:
        await bus.subscribe(channels)
        assert len({bus.node_for(c) for c in channels}) == 2
        counts = await asyncio.gather(*(bus.publish(c, c.encode()) for c in channels))
        assert set(counts) == {1}
        await eventually(lambda: len(got.messages) == len(channels), "every message")


async def test_the_cluster_speaks_tls_to_the_seeds_and_the_nodes_it_finds(
    tls_redis: TlsFactory, redis_bins: Binaries, pki: Pki
) -> None:
    nodes = [await tls_redis(cluster=True) for _ in range(3)]
    await asyncio.to_thread(redis_nodes.up_cluster, redis_bins, nodes)
    channels = [f"tls:cluster:{{{i}}}" for i in range(60)]
    got = Collector()
    seed = url(nodes[0])
    async with ClusterPubSub([seed], on_message=got, tls_ca=str(pki.ca), **FAST) as bus:
        await bus.subscribe(channels)
        assert {bus.node_for(c) for c in channels} == {f"127.0.0.1:{n.port}" for n in nodes}
        assert all(bus.subscriber(name).address.tls for name in {bus.node_for(c) for c in channels})
        counts = await asyncio.gather(*(bus.publish(c, c.encode()) for c in channels))
        assert set(counts) == {1}
        await eventually(lambda: len(got.messages) == len(channels), "every shard message")


async def test_the_caches_speak_tls(tls_redis: TlsFactory, pki: Pki, settings: Settings) -> None:
    node = await tls_redis()
    regions = RegionMap.from_settings(replace(settings, redis_url=url(node), regions=()))
    friends = LocationCache(regions, namespace="tls", ttl_s=60, tls_ca=str(pki.ca))
    try:
        here = Location(user_id=3, latitude=48.85, longitude=2.35, updated_at=1_700_000_000_000, connection="c")
        await friends.store("default", here)
        assert await friends.fetch("default", [3]) == {3: here}
    finally:
        await friends.close()
    api = Cache(url(node), "tls", 60, tls_ca=str(pki.ca))
    try:
        await api.check()
        assert api.up
    finally:
        await api.close()
    client = open_redis(url(node), tls_ca=str(pki.ca))
    try:
        assert await client.ping()
    finally:
        await client.aclose()
    untrusting = open_redis(url(node), tls_ca=str(pki.stranger_ca), socket_connect_timeout=2.0)
    try:
        with pytest.raises(RedisConnectionError, match="certificate verify failed|CERTIFICATE_VERIFY_FAILED"):
            await untrusting.ping()
    finally:
        await untrusting.aclose()
