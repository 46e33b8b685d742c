"""A tiny authoritative DNS server on Trio (UDP, 127.0.0.1) answering TXT queries from a dict."""

from __future__ import annotations

import dns.asyncresolver
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import trio

__all__ = ["DnsServer"]


class DnsServer:
    """TXT records by name (`records["_atproto.alice.coves.test"] = ["did=did:plc:…"]`);
    any other name is NXDOMAIN."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self.port = 0

    def resolver(self, lifetime_s: float = 2.0) -> dns.asyncresolver.Resolver:
        """A dnspython resolver asking only this server."""
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        resolver.lifetime = lifetime_s
        return resolver

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        with sock:
            await sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
            task_status.started()
            while True:
                data, address = await sock.recvfrom(4096)
                await sock.sendto(self._answer(data), address)

    def _answer(self, data: bytes) -> bytes:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.queries.append(name)
        values = self.records.get(name)
        if values is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT:
            quoted = [f'"{value}"' for value in values]
            response.answer.append(dns.rrset.from_text_list(
                question.name, 60, dns.rdataclass.IN, dns.rdatatype.TXT, quoted))
        return response.to_wire()
