"""``agi``: the FastAGI server of the ``callconsent-agi`` dialplan hook (read and checked)."""

from __future__ import annotations

import ipaddress

from ._model import AgiConfig
from ._read import Node


def read_agi(node: Node) -> AgiConfig:
    """``agi: {enabled, bind, port, allow}``; absent: enabled on 127.0.0.1:4573, loopback only."""
    default = AgiConfig()
    enabled = node.boolean("enabled", default.enabled)
    bind = node.opt_string("bind", default.bind) or default.bind
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        node.problems.error(node.at("bind"), f"{bind!r} is not an IP address such as 127.0.0.1")
    port = node.integer("port", default.port)
    if not 1 <= port <= 65535:
        node.problems.error(node.at("port"), "must be a TCP port, 1 to 65535")
    listed = node.strings("allow")
    allow = listed if node.has("allow") else default.allow
    for index, item in enumerate(allow):
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            node.problems.error(
                f"{node.at('allow')}[{index}]",
                f"{item!r} is not an address or network such as 127.0.0.1 or 10.0.0.0/24",
            )
    if node.has("allow") and not allow:
        node.problems.error(node.at("allow"), "must list at least one address (or disable agi)")
    node.done()
    return AgiConfig(enabled=enabled, bind=bind, port=port, allow=allow)
