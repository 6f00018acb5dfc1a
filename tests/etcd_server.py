"""Start and stop a real etcd v3 server for tests (``/usr/bin/etcd`` or ``etcd`` on PATH).

The server listens on a free 127.0.0.1 port with a private data directory; it is stopped by its
PID. Its request limits are raised (``--max-request-bytes``, ``--max-txn-ops``) so a reconcile
round of thousands of workloads fits one transaction, as the store documentation says.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from typing import NamedTuple

import pytest


class Etcd(NamedTuple):
    url: str
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def etcd_binary() -> str:
    path = shutil.which("etcd") or ("/usr/bin/etcd" if os.path.exists("/usr/bin/etcd") else None)
    if path is None:
        message = "etcd is not installed (apt-get install etcd-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def start_etcd(data_dir) -> Etcd:
    binary = etcd_binary()
    client, peer = free_port(), free_port()
    process = subprocess.Popen(
        [binary, "--data-dir", str(data_dir), "--name", "test",
         "--listen-client-urls", f"http://127.0.0.1:{client}",
         "--advertise-client-urls", f"http://127.0.0.1:{client}",
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"test=http://127.0.0.1:{peer}",
         "--max-request-bytes", str(64 << 20), "--max-txn-ops", "1000000",
         "--quota-backend-bytes", str(4 << 30), "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{client}/health", timeout=1).read()
            return Etcd(f"etcd://127.0.0.1:{client}", process)
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    pytest.fail(f"etcd did not start on 127.0.0.1:{client}")


def stop_etcd(server: Etcd) -> None:
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait()
