"""The kube-scheduler extender: numasched behind kube-scheduler's HTTP extender verbs.

``verbs.py`` holds the verbs (``Extender``: filter, prioritize, bind), ``cache.py`` the assume
cache (capacity of bound pods the topology source does not show yet), ``server.py`` the bounded
HTTP/1.1 server and ``binder.py`` the optional binder that posts ``Binding`` objects to the
Kubernetes API server.
"""
from .cache import PODS_ATTRIBUTE, AssumeCache, Reservation
from .server import Server
from .verbs import MAX_BODY_BYTES, MAX_JSON_DEPTH, UNKNOWN_NODE, VERBS, Extender, RequestError


def make_server(extender: Extender, host: str = "127.0.0.1", port: int = 8888, **options) -> Server:
    """A ``Server`` bound to ``host:port`` (port 0 = any free port) serving ``extender``; call
    ``serve_forever()`` on it (``server_address`` has the bound port). ``options`` are
    ``Server``'s (``workers``, ``backlog``, ``max_connections``, ``read_timeout``,
    ``idle_timeout``, ``access_log``)."""
    options.setdefault("max_body", MAX_BODY_BYTES)
    return Server(extender.handle, host, port, **options)


__all__ = ["Extender", "make_server", "Server", "AssumeCache", "Reservation", "RequestError",
           "MAX_BODY_BYTES", "MAX_JSON_DEPTH", "UNKNOWN_NODE", "VERBS", "PODS_ATTRIBUTE"]
