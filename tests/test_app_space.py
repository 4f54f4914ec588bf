"""The demo as a Hugging Face Space runs it: `python app.py` with no arguments under the platform's
environment (SPACE_ID, GRADIO_SERVER_NAME=0.0.0.0, GRADIO_SERVER_PORT). It must listen on every
interface on the platform's port (a server on 127.0.0.1 only cannot be reached by the Space's
proxy) and serve the page; the settings come from the platform first."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

from app_server import running_app

from c2f.ui.launch import default_library, parse_args


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses (dotted) with a socket listening on `port` (Linux: /proc/net/tcp, what
    `ss -ltn` reads)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return found


def outbound_address() -> str | None:
    """This machine's address on its default route (a UDP 'connect' sends nothing), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            return s.getsockname()[0]
        except OSError:
            return None


def test_space_environment_listens_on_all_interfaces_and_serves_the_page(tmp_path):
    with running_app(tmp_path / "library", space=True) as url:
        port = int(url.rsplit(":", 1)[1])
        assert listening_addresses(port) == {"0.0.0.0"}
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200 and "C2F: find the moment" in r.read().decode()
        # reached through an address other than the loopback, as the platform's proxy reaches it
        for addr in [a for a in [outbound_address()] if a and not a.startswith("127.")]:
            with urllib.request.urlopen(f"http://{addr}:{port}", timeout=10) as r:
                assert r.status == 200
    log = (tmp_path / "app.log").read_text()
    assert f"serving on 0.0.0.0:{port}" in log


def test_platform_settings_win_and_an_explicit_flag_wins_over_them(tmp_path):
    space = {"SPACE_ID": "a/b", "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861"}
    s = parse_args([], {**space, "C2F_HOST": "127.0.0.1", "C2F_PORT": "9000"})
    assert (s.host, s.port, s.multi_user, s.cache_examples) == ("0.0.0.0", 7861, True, True)
    s = parse_args(["--host", "127.0.0.1", "--port", "8000"], space)
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    s = parse_args([], {"C2F_HOST": "10.0.0.5"})
    assert (s.host, s.port, s.multi_user) == ("10.0.0.5", 7860, False)
    assert parse_args([], {}).host == "127.0.0.1"


def test_libraries_live_in_the_spaces_persistent_storage(tmp_path):
    data = tmp_path / "data"
    assert default_library({"SPACE_ID": "a/b"}, persistent=data) == Path("c2f_library")  # no /data
    data.mkdir()
    assert default_library({"SPACE_ID": "a/b"}, persistent=data) == data / "c2f_library"
    assert default_library({}, persistent=data) == Path("c2f_library")  # not a Space
    assert default_library({"SPACE_ID": "a/b", "C2F_LIBRARY": "/x"}, persistent=data) == Path("/x")
