#!/usr/bin/env python3
"""The experiment through the Docker SDK for Python (`pip install docker`), unmodified.

Two sandboxes, a network with an explicit subnet, connect both (the second with a static IP),
inspect, ping between them, disconnect, clean up.

  NETBRIDGE_SOCKET  Unix socket of the daemon               (default /run/netbridge.sock)
  NETBRIDGE_PREFIX  prefix of the sandbox and network names (default demo)
  NETBRIDGE_SUBNET  subnet of the network                   (default 172.30.0.0/24)
  NETBRIDGE_IP      static IP of the second sandbox         (default 172.30.0.20)

The ping step uses `ip netns exec` and so needs root; without root it is skipped, saying so.
"""

import os
import subprocess
import sys

import docker
from docker.errors import NotFound
from docker.types import IPAMConfig, IPAMPool

SOCKET = os.environ.get("NETBRIDGE_SOCKET", "/run/netbridge.sock")
PREFIX = os.environ.get("NETBRIDGE_PREFIX", "demo")
SUBNET = os.environ.get("NETBRIDGE_SUBNET", "172.30.0.0/24")
STATIC_IP = os.environ.get("NETBRIDGE_IP", "172.30.0.20")
A, B, NET = f"{PREFIX}-a", f"{PREFIX}-b", f"{PREFIX}-net"


def cleanup(client):
    """Removes what the experiment makes; what is already gone is fine."""
    for name in (A, B):
        try:
            client.api.remove_container(name, force=True)
        except NotFound:
            pass
    try:
        client.networks.get(NET).remove()
    except NotFound:
        pass


def experiment(client):
    assert client.ping() is True
    print("== server:", client.version()["Platform"]["Name"], client.api.api_version)

    # A container made by POST /containers/create?name=… (the image is recorded, never run);
    # as on Docker, it joins networks once started.
    print(f"== two sandboxes: {A}, {B}")
    for name in (A, B):
        print(client.api.create_container(image="none", name=name))
        client.api.start(name)

    print(f"== network {NET} with subnet {SUBNET}")
    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=SUBNET)])
    net = client.networks.create(NET, driver="bridge", ipam=ipam)
    print(net.id)

    print(f"== connect {A} (automatic address) and {B} (static {STATIC_IP})")
    net.connect(A)
    net.connect(B, ipv4_address=STATIC_IP)

    print(f"== inspect {NET}")
    net.reload()
    endpoints = {e["Name"]: e for e in net.attrs["Containers"].values()}
    for name, e in sorted(endpoints.items()):
        print(f"   {name}: {e['IPv4Address']} {e['MacAddress']}")
    assert sorted(endpoints) == [A, B], endpoints
    assert endpoints[B]["IPv4Address"].split("/")[0] == STATIC_IP, endpoints
    ip_a = endpoints[A]["IPv4Address"].split("/")[0]
    # the same address, seen from the container's side
    seen = client.api.inspect_container(A)["NetworkSettings"]["Networks"][NET]["IPAddress"]
    assert seen == ip_a, (seen, ip_a)

    if os.geteuid() == 0:
        print(f"== ping {A} -> {B} and {B} -> {A}")
        subprocess.run(["ip", "netns", "exec", A, "ping", "-c1", "-W2", STATIC_IP], check=True)
        subprocess.run(["ip", "netns", "exec", B, "ping", "-c1", "-W2", ip_a], check=True)
    else:
        print("== skipping ping: ip netns exec needs root")

    print(f"== disconnect {A}")
    net.disconnect(A)
    net.reload()
    names = sorted(e["Name"] for e in net.attrs["Containers"].values())
    assert names == [B], names

    print("== clean up")
    client.api.remove_container(A, force=True)
    client.api.remove_container(B, force=True)
    net.remove()
    print("== done")


def main():
    sys.stdout.reconfigure(line_buffering=True)  # keep our lines in order with ping's
    client = docker.DockerClient(base_url="unix://" + SOCKET)
    print(f"== talking to unix://{SOCKET}")
    try:
        experiment(client)
    finally:
        cleanup(client)
    return 0


if __name__ == "__main__":
    sys.exit(main())
