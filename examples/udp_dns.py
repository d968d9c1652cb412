"""A UDP, DNS-style responder on the userspace stack: answers every A query with the stack's
own address (a toy: no recursion, one answer).

    sudo python examples/udp_dns.py           # answer one query of its own and exit
    sudo python examples/udp_dns.py --serve   # then: dig @10.77.0.2 -p 5353 anything.test
"""
import asyncio
import socket
import struct
import sys

from _common import run


def answer(query: bytes, addr: str) -> bytes:
    ident, flags, qd = struct.unpack("!HHH", query[:6])
    end = 12
    while query[end]:
        end += query[end] + 1
    question = query[12:end + 5]
    header = struct.pack("!HHHHHH", ident, 0x8180, 1, 1, 0, 0)
    rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(addr)
    return header + question + rr


def query(name: str, ident=0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", 1, 1)


class Responder(asyncio.DatagramProtocol):
    def __init__(self, addr):
        self.addr = addr

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, peer):
        try:
            self.transport.sendto(answer(data, self.addr), peer)
        except (IndexError, struct.error):
            pass                                      # not a query: ignore it, as DNS does


class Asker(asyncio.DatagramProtocol):
    def __init__(self):
        self.reply = asyncio.get_running_loop().create_future()

    def datagram_received(self, data, peer):
        self.reply.set_result(data)


async def main():
    loop = asyncio.get_running_loop()
    me = loop.stack.address
    transport, _ = await loop.create_datagram_endpoint(lambda: Responder(me),
                                                       local_addr=("0.0.0.0", 5353))
    print(f"answering A queries on {me}:5353/udp", flush=True)
    if "--serve" in sys.argv:
        print(f"  from the host: dig @{me} -p 5353 anything.test", flush=True)
        await asyncio.Event().wait()
    client, asker = await loop.create_datagram_endpoint(Asker, remote_addr=(me, 5353))
    client.sendto(query("anything.test"))
    reply = await asyncio.wait_for(asker.reply, 5)
    assert socket.inet_ntoa(reply[-4:]) == me
    print(f"anything.test -> {socket.inet_ntoa(reply[-4:])}: ok", flush=True)
    client.close()
    transport.close()


run(main())
