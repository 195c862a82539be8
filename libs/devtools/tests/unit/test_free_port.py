"""free_port picks listening ports outside the kernel's ephemeral range, so an outgoing
connection's source port cannot take one between the pick and the server's bind."""

from __future__ import annotations

import socket

from cqdev.stack import _ephemeral_ports, free_port


def test_free_ports_lie_outside_the_ephemeral_range_and_can_be_bound() -> None:
    ephemeral = _ephemeral_ports()
    ports = {free_port() for _ in range(20)}
    assert not ports & set(ephemeral)
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
