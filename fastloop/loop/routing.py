"""Which stack an address goes to: the userspace stack or the kernel.

The rule (documented in the README):
- connect: a destination on the userspace interface's subnet, its own address, or anywhere
  but loopback when the configuration has a gateway, goes to the userspace stack;
  127.0.0.0/8 goes to the userspace stack only in stack-loopback mode (`loopback=True`);
  everything else (other kernel addresses, Unix sockets, IPv6) goes to the kernel.
- listen: the wildcard (host None, "" or "0.0.0.0") and the interface's own address go to the
  userspace stack; 127.0.0.0/8 too in stack-loopback mode; anything else to the kernel.
  The loop resolves names first (for connect, listen and a datagram endpoint's local_addr
  alike), and a list of hosts given to create_server is the stack's when each host is.
"""
from __future__ import annotations

import ipaddress

WILDCARDS = (None, "", "0.0.0.0")


def _ipv4(host):
    try:
        return ipaddress.IPv4Address(host)
    except (ValueError, TypeError):
        return None


def connect_goes_to_stack(config, host) -> bool:
    """host: an IPv4 literal (names are resolved first)."""
    ip = _ipv4(host)
    if ip is None:
        return False
    itf = config.interface()
    if ip.is_loopback:
        return bool(config.loopback)
    if ip == itf.ip or ip in itf.network:
        return True
    return config.gateway_address() is not None and not ip.is_multicast and not ip.is_unspecified


def listen_goes_to_stack(config, host) -> bool:
    if host in WILDCARDS:
        return True
    ip = _ipv4(host)
    if ip is None:
        return False
    if ip.is_loopback:
        return bool(config.loopback)
    return ip == config.interface().ip
