"""Nothing listens on anything but 127.0.0.1 unless configured to: the metrics exporter and the WebSocket
feed, checked on the sockets this process really has listening (from /proc)."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import pytest

from lobterm.assemble import build_sim_kernel
from lobterm.config import Config, ConfigError, FeedConfig, MetricsConfig, load
from lobterm.services import describe_services, start_services


def listening(pid: int | str = "self") -> set[tuple[str, int]]:
    """(address, port) of every TCP socket process `pid` has in the LISTEN state."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] != "0A" or cols[9] not in inodes:  # 0A: LISTEN
                continue
            addr_hex, port_hex = cols[1].split(":")
            raw = bytes.fromhex(addr_hex)
            if family == socket.AF_INET:
                addr = socket.inet_ntop(family, struct.pack("<I", int(addr_hex, 16)))
            else:
                addr = socket.inet_ntop(
                    family,
                    b"".join(
                        struct.pack("<I", int.from_bytes(raw[i : i + 4], "big")) for i in range(0, 16, 4)
                    ),
                )
            out.add((addr, int(port_hex, 16)))
    return out


def test_the_defaults_are_loopback_only_and_the_feed_is_off():
    cfg = Config()
    assert cfg.metrics.host == "127.0.0.1" and cfg.metrics.enabled
    assert cfg.feed.host == "127.0.0.1" and not cfg.feed.enabled


def test_bad_service_settings_are_refused_naming_the_key(tmp_path):
    for text, key in (
        ("[metrics]\nport = 70000\n", "metrics.port"),
        ("[feed]\ntop_n = 0\n", "feed.top_n"),
        ('[feed]\nhost = ""\n', "feed.host"),
        ("[metrics]\nlisten = 1\n", "metrics.listen"),
    ):
        f = tmp_path / "c.toml"
        f.write_text(text)
        with pytest.raises(ConfigError) as err:
            load(f, use_defaults=False)
        assert err.value.key == key


async def test_the_exporter_and_the_feed_listen_on_127_0_0_1_only():
    before = listening()
    cfg = Config()
    cfg.metrics = MetricsConfig(port=0)
    cfg.feed = FeedConfig(enabled=True, port=0)
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    assert await start_services(kernel, cfg) == []
    try:
        new = listening() - before
        assert {port for _addr, port in new} == {kernel.metrics.address[1], kernel.feed.address[1]}
        assert {addr for addr, _port in new} == {"127.0.0.1"}
        assert describe_services(kernel) == [
            f"metrics: http://127.0.0.1:{kernel.metrics.address[1]}/metrics",
            f"feed: ws://127.0.0.1:{kernel.feed.address[1]}/",
        ]
    finally:
        await kernel.stop()


async def test_with_the_default_config_only_the_exporter_listens_and_a_taken_port_is_a_message():
    cfg = Config()
    cfg.metrics = MetricsConfig(port=0)
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    assert await start_services(kernel, cfg) == []
    try:
        assert kernel.feed is None
        taken = kernel.metrics.address[1]
        other = Config()
        other.metrics = MetricsConfig(port=taken)
        other.feed = FeedConfig(enabled=True, port=taken)
        k2, _v2 = build_sim_kernel(other, virtual=True)
        problems = await start_services(k2, other)
        # The exporter moves to a free port (and says so in the UI); the feed cannot, and says so.
        assert k2.metrics.port_taken == taken and k2.metrics.address[1] not in (0, taken)
        assert len(problems) == 1
        assert f"127.0.0.1:{taken}" in problems[0] and "feed" in problems[0]
        await k2.stop()
    finally:
        await kernel.stop()
