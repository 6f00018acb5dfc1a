"""The kube-scheduler extender: numasched behind kube-scheduler's HTTP extender verbs.

``server.py`` holds the verbs (``Extender``) and the HTTP server (``make_server``).
"""
from .server import MAX_BODY_BYTES, UNKNOWN_NODE, Extender, make_server

__all__ = ["Extender", "make_server", "MAX_BODY_BYTES", "UNKNOWN_NODE"]
