"""A 3-node RabbitMQ cluster of our own, from Debian's ``rabbitmq-server``, for MQTT devices.

Each node is a separate Erlang VM with its own node name, ports and data/log directories under
one directory, all sharing one Erlang cookie; they find each other through RabbitMQ's
``classic_config`` peer discovery. The system RabbitMQ on 5672 is left alone.

* MQTT plugin on every node (MQTT 3.1.1: RabbitMQ 3.10 has no MQTT 5), ``mqtt.durable_queue_type
  = quorum``: a persistent session's subscription queue (``clean_session=false``) is a quorum
  queue replicated on the three nodes, and a QoS 1 PUBACK is sent once a majority has the
  message, so a node can die without losing an acknowledged reading.
* No anonymous access. Users come from a definitions file: one per device, allowed to publish
  only under its own ``devices/{id}/...`` (topic permissions on ``amq.topic``) and to read
  nothing; the ingest service account may read ``devices/...``. Passwords are the ones
  :mod:`aftercare.broker` derives for Mosquitto, so the same device credentials work on both.

``python -m tests.support.rabbit_cluster up DIR`` (or ``scripts/cluster.sh up``) starts one and
prints the MQTT URL of the node list; ``down DIR`` stops it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from aftercare import broker

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
SECRET = "cluster-device-secret"


def _password_hash(password: str) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(users: dict[str, str]) -> dict[str, object]:
    """Users, permissions and topic permissions for `users` (name -> password)."""
    out_users, perms, topic = [], [], []
    for name, password in users.items():
        out_users.append({"name": name, "password_hash": _password_hash(password),
                          "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""})
        if name in broker.SERVICE_USERS:
            # Its own persistent-session queues (reading every device's telemetry), and the
            # event bus's queues (aftercare/alerts, over AMQP).
            own = r"^(mqtt-subscription-.*|aftercare[/.].*)$"
            perms.append({"user": name, "vhost": "/", "configure": own,
                          "write": r"^(amq\.topic|amq\.default|mqtt-subscription-.*"
                                   r"|aftercare[/.].*)$",
                          "read": r"^(amq\.topic|mqtt-subscription-.*|aftercare[/.].*)$"})
            topic.append({"user": name, "vhost": "/", "exchange": "amq.topic",
                          "write": r"^aftercare\..*$", "read": r"^(devices|aftercare)\..*$"})
        else:
            dev = re.escape(name)
            perms.append({"user": name, "vhost": "/", "configure": "^$",
                          "write": r"^amq\.topic$", "read": "^$"})
            topic.append({"user": name, "vhost": "/", "exchange": "amq.topic",
                          "write": rf"^devices\.{dev}\.(telemetry|status|waveform)$",
                          "read": "^$"})
    return {"users": out_users, "vhosts": [{"name": "/"}], "permissions": perms,
            "topic_permissions": topic}


def _free_port() -> int:
    return broker.free_port()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Node:
    name: str           # short node name, e.g. ac1 (the Erlang node is ac1@localhost)
    dir: Path
    amqp_port: int
    mqtt_port: int
    dist_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def node(self) -> str:
        return f"{self.name}@localhost"


@dataclass
class RabbitCluster:
    """`size` RabbitMQ nodes with the MQTT plugin, clustered, under `directory`."""

    directory: Path
    devices: list[str]
    size: int = 3
    secret: str = SECRET
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tag = secrets.token_hex(3)
        self.cookie = secrets.token_hex(16)
        home = self.directory / "home"
        home.mkdir(exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(self.cookie)
        cookie.chmod(0o400)
        self.home = home
        self.users = broker.default_users(self.secret, self.devices)
        defs = self.directory / "definitions.json"
        defs.write_text(json.dumps(definitions(self.users)))
        defs.chmod(0o600)
        (self.directory / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        self.nodes = [Node(f"ac{tag}{i}", self.directory / f"node{i}", _free_port(),
                           _free_port(), _free_port()) for i in range(1, self.size + 1)]
        for n in self.nodes:
            n.dir.mkdir(exist_ok=True)
            lines = [
                f"listeners.tcp.default = 127.0.0.1:{n.amqp_port}",
                f"mqtt.listeners.tcp.default = 127.0.0.1:{n.mqtt_port}",
                "mqtt.allow_anonymous = false",
                "mqtt.durable_queue_type = quorum",
                "mqtt.vhost = /",
                "mqtt.exchange = amq.topic",
                # unacknowledged deliveries per subscriber (the ingest worker's window)
                "mqtt.prefetch = 1000",
                "loopback_users = none",
                f"load_definitions = {defs}",
                "cluster_formation.peer_discovery_backend = classic_config",
                *(f"cluster_formation.classic_config.nodes.{j} = {m.node}"
                  for j, m in enumerate(self.nodes, 1)),
                "log.file.level = info",
                "log.console = false",
            ]
            (n.dir / "rabbitmq.conf").write_text("\n".join(lines) + "\n")

    def _env(self, n: Node) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home),
                "RABBITMQ_NODENAME": n.node,
                "RABBITMQ_CONFIG_FILE": str(n.dir / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(n.dir / "advanced.config"),
                "RABBITMQ_MNESIA_BASE": str(n.dir / "mnesia"),
                "RABBITMQ_LOG_BASE": str(n.dir / "log"),
                "RABBITMQ_PID_FILE": str(n.dir / "pid"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
                "RABBITMQ_PLUGINS_EXPAND_DIR": str(n.dir / "plugins-expand"),
                "RABBITMQ_DIST_PORT": str(n.dist_port),
                "RABBITMQ_NODE_PORT": str(n.amqp_port),
                "RABBITMQ_CONF_ENV_FILE": str(n.dir / "rabbitmq-env.conf")}

    def start_node(self, n: Node) -> None:
        with open(n.dir / "stdout.log", "ab") as out:
            n.proc = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env=self._env(n),
                                      stdout=out, stderr=out, cwd=n.dir,
                                      start_new_session=True)

    def wait_node(self, n: Node, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not _port_open(n.mqtt_port):
            if n.proc is not None and n.proc.poll() is not None:
                raise RuntimeError(f"RabbitMQ node {n.node} exited ({n.proc.returncode}); see "
                                   f"{n.dir / 'stdout.log'} and {n.dir / 'log'}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"RabbitMQ node {n.node} did not open MQTT port "
                                   f"{n.mqtt_port}")
            time.sleep(0.2)

    def start(self, timeout_s: float = 180.0) -> None:
        for n in self.nodes:
            self.start_node(n)
        for n in self.nodes:
            self.wait_node(n, timeout_s)
        self.wait_clustered(timeout_s)

    def ctl(self, n: Node, *args: str, timeout_s: float = 60.0) -> str:
        done = subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", n.node, *args],
                              env=self._env(n), capture_output=True, text=True,
                              timeout=timeout_s, check=False)
        if done.returncode:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {n.node}: "
                               f"{done.stdout} {done.stderr}".strip())
        return done.stdout

    def running_nodes(self, via: Node | None = None) -> list[str]:
        via = via or next(n for n in self.nodes if self.alive(n))
        out = self.ctl(via, "cluster_status", "--formatter", "json")
        return sorted(json.loads(out).get("running_nodes", []))

    def wait_clustered(self, timeout_s: float = 120.0) -> None:
        want = sorted(n.node for n in self.nodes if self.alive(n))
        deadline = time.monotonic() + timeout_s
        while True:
            with suppress(RuntimeError, ValueError, subprocess.TimeoutExpired):
                if self.running_nodes() == want:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"RabbitMQ nodes {want} did not form one cluster")
            time.sleep(1)

    def alive(self, n: Node) -> bool:
        return n.proc is not None and n.proc.poll() is None

    def kill(self, n: Node) -> None:
        """kill -9 the node's Erlang VM (and its helpers): a crash, not a shutdown."""
        if n.proc is not None and n.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(n.proc.pid, signal.SIGKILL)
            n.proc.wait(20)

    def stop(self) -> None:
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(n.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30  # a graceful stop, then kill what is left
        for n in self.nodes:
            if n.proc is not None:
                try:
                    n.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.kill(n)

    def url(self, user: str, nodes: list[Node] | None = None) -> str:
        """MQTT URL of `user` listing every node: the client fails over between them."""
        hosts = ",".join(f"127.0.0.1:{n.mqtt_port}" for n in (nodes or self.nodes))
        return f"mqtt://{user}:{self.users[user]}@{hosts}/?protocol=3.1.1"

    def amqp_url(self, node: Node, user: str = broker.SERVICE_USER) -> str:
        """AMQP URL of one node (FastStream takes one host) for a service account."""
        return f"amqp://{user}:{self.users[user]}@127.0.0.1:{node.amqp_port}/"

    def cluster_amqp_url(self, nodes: list[Node], user: str = broker.SERVICE_USER) -> str:
        """One EVENTS_URL naming `nodes` in this order (the publisher and the consumer move
        along it when a node stops answering)."""
        hosts = ",".join(f"127.0.0.1:{n.amqp_port}" for n in nodes)
        return f"amqp://{user}:{self.users[user]}@{hosts}/"


@contextmanager
def rabbit_cluster(directory: Path, devices: list[str], size: int = 3) -> Iterator[RabbitCluster]:
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        raise RuntimeError("rabbitmq-server not found: install Debian's 'rabbitmq-server'")
    c = RabbitCluster(directory, devices, size=size)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@contextmanager
def scratch_cluster(devices: list[str]) -> Iterator[RabbitCluster]:
    """A cluster in a temporary directory, removed afterwards (a test module's fixture);
    skips the test where Debian's rabbitmq-server is not installed."""
    import pytest

    if not (RABBIT_BIN / "rabbitmq-server").exists():
        pytest.skip("Debian's rabbitmq-server is not installed")
    directory = Path(tempfile.mkdtemp(prefix="aftercare-cluster-"))
    try:
        with rabbit_cluster(directory / "rmq", devices) as rc:
            yield rc
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="cluster", description=__doc__.split("\n")[0])
    p.add_argument("action", choices=("up",))
    p.add_argument("dir", type=Path)
    p.add_argument("--devices", default="sim-0000",
                   help="comma-separated device ids to create users for")
    p.add_argument("--size", type=int, default=3)
    args = p.parse_args(argv)
    if args.dir.exists():
        shutil.rmtree(args.dir)
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # delivered to sigwait: the nodes get stopped
    with rabbit_cluster(args.dir, args.devices.split(","), args.size) as c:
        print(f"cluster up: {', '.join(n.node for n in c.nodes)}")
        print(f"ingest MQTT_URL={c.url(broker.INGEST_USER)}")
        print("Ctrl-C stops it", flush=True)
        signal.sigwait(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
