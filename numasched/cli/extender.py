"""``numasched extender``: the kube-scheduler extender verbs served over HTTP."""
from __future__ import annotations

import click

from .. import codes
from .common import UserError, user_errors


@click.command("extender")
@click.option("--topology", "topology_path", required=True, metavar="PATH",
              help="Topology directory or file (NodeResourceTopology / Node YAML, inventory).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (only 127.0.0.1 unless you mean to expose it).")
@click.option("--port", type=click.IntRange(0, 65535), default=8888, show_default=True,
              help="TCP port (0 = any free port).")
@click.option("--policy", default="best-fit", show_default=True, metavar="NAME",
              help="Host score or preset used by prioritize.")
@click.option("--numa", type=click.Choice(list(codes.NUMA_MODES)), default=None,
              help="NUMA mode of pods without the numasched.io/numa annotation "
                   "[default: the hosts' topologyManagerPolicy, else restricted].")
def command(topology_path, host, port, policy, numa) -> None:
    """Serve the kube-scheduler extender verbs (POST /filter, /prioritize) for a topology."""
    import logging

    from .. import policies
    from ..extender import Extender, make_server

    if policy not in policies.names():
        raise UserError(f"unknown policy {policy!r}; known: {', '.join(policies.names())}")
    with user_errors():
        ext = Extender.from_path(topology_path, policy=policy, numa=numa)
        ext.warm_up()
    try:
        server = make_server(ext, host, port)
    except OSError as exc:   # address in use, no such interface, a privileged port
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    # serving from here on: topology re-reads and refusals are logged on stderr
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    bound_host, bound_port = server.server_address[:2]
    click.echo(f"numasched extender: {len(ext.topology):,} hosts from {topology_path}, policy "
               f"{policy}, numa {ext.numa} ({ext.numa_from}); listening on "
               f"http://{bound_host}:{bound_port} (POST /filter, /prioritize; GET /healthz)",
               err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
