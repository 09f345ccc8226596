"""Small facts about the current request that several modules need: above all, who the client is.

Behind a reverse proxy every connection comes from the proxy. ``MEDCHAT_TRUSTED_PROXIES`` names the
networks of the proxies; only a peer in them is believed about the client, through the forwarding
headers it appends to: ``X-Forwarded-For`` (what Traefik and nginx set), else ``Forwarded`` (RFC 7239).
The client is the right-most address of that chain not in a trusted network: entries to its left were
written by the client itself and prove nothing. Every limiter and the audit log use this one address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from litestar import Request

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
TRUSTED_PROXIES_STATE_KEY = "trusted_proxies"
"""Where ``create_app`` keeps the trusted networks (``app.state``) for ``client_ip``."""


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``10.42.0.0/16``, ``192.168.1.1`` (one host) or ``fd00::/8``; raises ``ValueError`` naming a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP network (write e.g. 10.42.0.0/16)") from None
    return tuple(networks)


def client_ip(request: Request[Any, Any, Any]) -> str | None:
    """The client's address (the ``client_ip`` dependency): the peer, or the address a trusted proxy forwarded."""
    peer = request.client.host if request.client else None
    trusted: Sequence[IPNetwork] = request.app.state.get(TRUSTED_PROXIES_STATE_KEY, ())
    return client_address(
        peer,
        trusted=trusted,
        forwarded_for=request.headers.getall("x-forwarded-for", []),
        forwarded=request.headers.getall("forwarded", []),
    )


def client_address(
    peer: str | None, *, trusted: Sequence[IPNetwork], forwarded_for: Sequence[str], forwarded: Sequence[str]
) -> str | None:
    """The right-most address of the forwarding chain not in ``trusted``, when ``peer`` is a trusted proxy.

    An entry that is not an address (``unknown``, an obfuscated name) ends the walk: the last trusted hop
    before it is the best that can be said about the client."""
    peer_address = _address(peer)
    if peer_address is None or not _in(peer_address, trusted):
        return peer
    chain = _forwarded_for_chain(forwarded_for) if forwarded_for else _forwarded_chain(forwarded)
    client = peer_address
    for entry in reversed(chain):
        address = _address(entry)
        if address is None:
            break
        client = address
        if not _in(address, trusted):
            break
    return str(client)


def _forwarded_for_chain(values: Sequence[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _forwarded_chain(values: Sequence[str]) -> list[str]:
    """The ``for=`` of each element of ``Forwarded: for=192.0.2.60;proto=https, for="[2001:db8::1]:443"``."""
    chain = []
    for value in values:
        for element in value.split(","):
            for pair in element.split(";"):
                name, _, parameter = pair.partition("=")
                if name.strip().lower() == "for":
                    chain.append(parameter.strip().strip('"'))
    return chain


def _address(text: str | None) -> IPAddress | None:
    """An address as proxies write it: ``192.0.2.1``, ``192.0.2.1:8080``, ``2001:db8::1``, ``[2001:db8::1]:443``."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.42.0.7 from a dual-stack socket is 10.42.0.7
    return address


def _in(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in networks)
