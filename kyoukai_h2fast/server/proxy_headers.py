"""Proxy headers: ``X-Forwarded-For``, ``X-Forwarded-Proto`` and RFC 7239 ``Forwarded``.

Owns one decision: whether a request's peer is a trusted proxy, and if so, which client
address and scheme it reports. :class:`ProxyHeaders` applies that to a built WSGI environ:
``REMOTE_ADDR`` (``REMOTE_PORT`` the client's port when ``Forwarded`` names one, else ``"0"``)
and ``wsgi.url_scheme``. Requests from any other peer are left exactly as they are, so a
client cannot spoof its address by sending the headers itself.

Rules (the ones uvicorn and gunicorn follow, with RFC 7239 on top):

* Trusted peers: ``--forwarded-allow-ips``, a comma list of addresses and networks
  (``127.0.0.1,10.0.0.0/8,::1``), or ``*`` for any peer. Default: none.
* ``Forwarded`` wins over the ``X-Forwarded-*`` pair when both are present.
* The client is found by walking the hops from the nearest (right-most) to the farthest: the
  first hop that is not itself a trusted proxy is the client; if every hop is trusted (as with
  ``*``), the farthest one is. Its scheme comes from the same hop (``proto=``), or from
  ``X-Forwarded-Proto`` (the value at the same position when the lists line up, else the last).
* Only ``http``/``https`` are taken as schemes; a hop that is not an IP address (``unknown``,
  an obfuscated ``_name``) is reported as it is.
"""
from __future__ import annotations

import ipaddress

__all__ = ["ProxyHeaders", "parse_forwarded"]

_SCHEMES = {"http": "http", "https": "https"}
_CACHE_MAX = 1024


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239 §4: ``for=a;proto=https, for="[2001:db8::1]:4711"`` -> a dict per element
    (lower-case parameter names, quotes removed). Malformed pairs are skipped."""
    elements = []
    for element in _split_outside_quotes(value, ","):
        params: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            name, sep, raw = pair.partition("=")
            name = name.strip().lower()
            raw = raw.strip()
            if not sep or not name:
                continue
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            params.setdefault(name, raw)
        elements.append(params)
    return elements


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p for p in (part.strip() for part in parts) if p]


def _node(value: str) -> tuple[str, str | None]:
    """A ``for=`` node: ``1.2.3.4``, ``1.2.3.4:80``, ``[v6]``, ``[v6]:80``, ``unknown``."""
    if value.startswith("["):
        end = value.find("]")
        if end > 0:
            host, rest = value[1:end], value[end + 1:]
            return host, rest[1:] if rest.startswith(":") and rest[1:].isdigit() else None
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host, port if port.isdigit() else None
    return value, None


class ProxyHeaders:
    """Trusted proxies and the environ rewrite for their requests."""

    def __init__(self, allow: tuple | list) -> None:
        self.trust_all = "*" in allow
        self.networks = [ipaddress.ip_network(entry, strict=False)
                         for entry in allow if entry != "*"]
        self._cache: dict[str, bool] = {}

    def trusts(self, address: str | None) -> bool:
        """Whether ``address`` (a peer or hop address) is a trusted proxy."""
        if self.trust_all:
            return True
        if not address:
            return False
        known = self._cache.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                known = False
            else:
                known = any(ip in network for network in self.networks)
            if len(self._cache) < _CACHE_MAX:
                self._cache[address] = known
        return known

    def apply(self, environ: dict, peer: str | None) -> None:
        """Rewrite ``REMOTE_ADDR``/``REMOTE_PORT``/``wsgi.url_scheme`` from the proxy
        headers, when ``peer`` is trusted; otherwise do nothing."""
        if not self.trusts(peer):
            return
        forwarded = environ.get("HTTP_FORWARDED")
        if forwarded is not None:
            hops = [e for e in parse_forwarded(forwarded) if "for" in e]
            if hops:
                index = self._client_index([_node(e["for"])[0] for e in hops])
                host, port = _node(hops[index]["for"])
                proto = hops[index].get("proto")
                self._set(environ, host, port, proto)
                return
        xff = environ.get("HTTP_X_FORWARDED_FOR")
        xfp = environ.get("HTTP_X_FORWARDED_PROTO")
        protos = [p.strip() for p in xfp.split(",")] if xfp else []
        if xff:
            addresses = [h.strip() for h in xff.split(",") if h.strip()]
            if addresses:
                index = self._client_index([_node(h)[0] for h in addresses])
                proto = (protos[index] if len(protos) == len(addresses)
                         else protos[-1] if protos else None)
                self._set(environ, _node(addresses[index])[0], None, proto)
                return
        if protos:
            self._set(environ, None, None, protos[-1])

    def _client_index(self, hosts: list[str]) -> int:
        for index in range(len(hosts) - 1, -1, -1):
            if not self.trusts(hosts[index]):
                return index
        return 0

    @staticmethod
    def _set(environ: dict, host: str | None, port: str | None, proto: str | None) -> None:
        if host:
            environ["REMOTE_ADDR"] = host
            environ["REMOTE_PORT"] = port or "0"
        scheme = _SCHEMES.get((proto or "").lower())
        if scheme is not None and scheme != environ.get("wsgi.url_scheme"):
            environ["wsgi.url_scheme"] = scheme
            host_header = environ.get("HTTP_HOST", "")
            if host_header and _node(host_header)[1] is None:  # no explicit port
                environ["SERVER_PORT"] = "443" if scheme == "https" else "80"
