"""``numasched extender``: the kube-scheduler extender verbs served over HTTP."""
from __future__ import annotations

import click

from .. import codes
from .common import UserError, user_errors


@click.command("extender")
@click.option("--topology", "topology_path", required=True, metavar="PATH",
              help="Topology directory or file (NodeResourceTopology / Node YAML, inventory); "
                   "re-read when a file changes.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (only 127.0.0.1 unless you mean to expose it).")
@click.option("--port", type=click.IntRange(0, 65535), default=8888, show_default=True,
              help="TCP port (0 = any free port).")
@click.option("--policy", default="best-fit", show_default=True, metavar="NAME",
              help="Host score or preset used by prioritize.")
@click.option("--numa", type=click.Choice(list(codes.NUMA_MODES)), default=None,
              help="NUMA mode of pods without the numasched.io/numa annotation "
                   "[default: the hosts' topologyManagerPolicy, else restricted].")
@click.option("--assume/--no-assume", default=True, show_default=True,
              help="Subtract pods bound through /bind until the topology lists them "
                   "(--no-assume answers from the topology alone and can over-commit).")
@click.option("--assume-ttl", type=click.FloatRange(min=0, min_open=True), default=60.0,
              show_default=True, metavar="SECONDS",
              help="Longest a bound pod is held if the topology never lists it.")
@click.option("--state", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Journal of the reservations, so a restarted extender still holds them.")
@click.option("--bind-api-server", metavar="URL|in-cluster", default=None,
              help="Create each pod's Binding on this Kubernetes API server ('in-cluster': "
                   "the pod's service account); without it binds are only recorded.")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="Bearer token file for --bind-api-server URL.")
@click.option("--ca-file", type=click.Path(dir_okay=False), default=None,
              help="CA bundle for --bind-api-server URL.")
@click.option("--refresh", "refresh_interval", type=click.FloatRange(min=0.05), default=1.0,
              show_default=True, metavar="SECONDS", help="How often to look for topology changes.")
@click.option("--workers", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Threads answering requests.")
@click.option("--max-connections", type=click.IntRange(1), default=1024, show_default=True,
              help="Open connections at most; one more is answered 503.")
@click.option("--read-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, metavar="SECONDS", help="Time for a whole request to arrive.")
@click.option("--idle-timeout", type=click.FloatRange(min=0, min_open=True), default=90.0,
              show_default=True, metavar="SECONDS", help="Keep-alive connections idle longer are closed.")
@click.option("--access-log", is_flag=True, default=False,
              help="Log one line per request on stderr (client, method, path, status, bytes, ms).")
def command(topology_path, host, port, policy, numa, assume, assume_ttl, state, bind_api_server,
            token_file, ca_file, refresh_interval, workers, max_connections, read_timeout,
            idle_timeout, access_log) -> None:
    """Serve the kube-scheduler extender verbs (POST /filter, /prioritize, /bind) for a topology."""
    import logging
    import os

    from .. import policies
    from ..extender import Extender, make_server
    from ..extender.binder import APIServerBinder

    if policy not in policies.names():
        raise UserError(f"unknown policy {policy!r}; known: {', '.join(policies.names())}")
    with user_errors():
        binder = None
        if bind_api_server == "in-cluster":
            binder = APIServerBinder.in_cluster()
        elif bind_api_server:
            binder = APIServerBinder(bind_api_server, token_file=token_file, ca_file=ca_file)
        ext = Extender.from_path(topology_path, policy=policy, numa=numa, assume=assume,
                                 assume_ttl=assume_ttl, on_bind=binder, state=state)
        ext.warm_up()
    log = None
    if access_log:
        access = logging.getLogger("numasched.extender.access")

        def log(client, method, path, status, size, seconds):
            access.info('%s "%s %s" %d %d %.1fms', client, method, path, status, size,
                        seconds * 1000)
    try:
        server = make_server(ext, host, port, workers=workers, max_connections=max_connections,
                             read_timeout=read_timeout, idle_timeout=idle_timeout, access_log=log)
    except OSError as exc:   # address in use, no such interface, a privileged port
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise UserError(f"cannot listen on {host}:{port}: {reason}") from None
    # serving from here on: topology re-reads and refusals are logged on stderr
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    bound_host, bound_port = server.server_address[:2]
    click.echo(f"numasched extender: {len(ext.topology):,} hosts from {topology_path}, policy "
               f"{policy}, numa {ext.numa} ({ext.numa_from}); listening on "
               f"http://{bound_host}:{bound_port} (POST /filter, /prioritize, /bind; "
               "GET /healthz, /bindings)", err=True)
    ext.watch(refresh_interval)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        ext.stop()
        server.server_close()
