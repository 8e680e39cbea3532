# netbridge in a container, for docker-compose.yml beside this file.
#
# The binary is built on the host and copied in, so the image builds without a Rust toolchain:
#   cargo build --release && docker compose up -d --build
# BASE is any Debian-like image: Debian's own by default; a locally made one works too (the
# compose test imports a `debootstrap --variant=minbase bookworm` tree, no registry needed).
ARG BASE=debian:bookworm-slim
FROM ${BASE}

# What netbridge runs besides itself: nft (its firewall), modprobe (br_netfilter, for
# enable_icc=false) and curl (the healthcheck). Installed only when the base lacks them, so a
# base that already has them (the compose test's) builds with no network at all.
RUN set -eu; need=""; \
    command -v nft >/dev/null || need="$need nftables"; \
    command -v modprobe >/dev/null || need="$need kmod"; \
    command -v curl >/dev/null || need="$need curl"; \
    if [ -n "$need" ]; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    # Docker mounts /proc/sys read-only, but netbridge sets net.* sysctls of the host it
    # serves (ip_forward, bridge-nf-call-*): with SYS_ADMIN the entrypoint remounts it writable.
    printf '%s\n' '#!/bin/sh' \
        '[ -w /proc/sys/net/ipv4/ip_forward ] || mount -o remount,bind,rw /proc/sys ||' \
        '    echo "netbridge: /proc/sys is read-only (no SYS_ADMIN?): sysctls cannot be set" >&2' \
        'exec /usr/local/bin/netbridge "$@"' > /usr/local/bin/netbridge-entrypoint; \
    chmod 755 /usr/local/bin/netbridge-entrypoint

ARG BINARY=target/release/netbridge
COPY ${BINARY} /usr/local/bin/netbridge

# The socket goes in a directory of its own, so that a host directory can be mounted there.
ENV NETBRIDGE_SOCKET=/run/netbridge/netbridge.sock \
    NETBRIDGE_DB=/var/lib/netbridge/netbridge.db \
    NETBRIDGE_NETNS_DIR=/run/netns
VOLUME ["/var/lib/netbridge"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD curl -fsS --max-time 2 --unix-socket /run/netbridge/netbridge.sock http://localhost/_ping || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/netbridge-entrypoint"]
CMD ["serve"]
