#!/usr/bin/env bash
# Makes `make up` possible on a Debian/Ubuntu machine that reaches no container registry (CI):
#   1. a Docker engine that answers (installs docker.io and starts dockerd when none does),
#   2. the compose v2 CLI plugin (built once from the Go module proxy, cached),
#   3. the base image every Dockerfile starts FROM (BASE, default debian:bookworm-slim): pulled
#      when a registry answers, else made with debootstrap from the Debian mirror apt uses.
# Each step is skipped when its result is already there, so a second run takes about a second.
# Run as root. Settings (environment): BASE, COMPOSE_VERSION, STOCK_SYSTEM_CACHE, DEBIAN_MIRROR.
set -euo pipefail

BASE=${BASE:-debian:bookworm-slim}
COMPOSE_VERSION=${COMPOSE_VERSION:-v2.29.7}
CACHE=${STOCK_SYSTEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stock-system}
PLUGIN_DIR=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins

log() { echo "docker-engine: $*" >&2; }
die() { log "$*"; exit 1; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

apt_install() {
    [[ $(id -u) == 0 ]] || die "need root to install $* (apt-get install -y $*)"
    if [[ ! -f "$CACHE/.apt-updated" ]] || [[ -n $(find "$CACHE/.apt-updated" -mmin +600) ]]; then
        apt-get update -q >&2
        mkdir -p "$CACHE" && touch "$CACHE/.apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2
}

start_engine() {
    engine_answers && return 0
    command -v dockerd >/dev/null 2>&1 || apt_install docker.io
    command -v docker >/dev/null 2>&1 || apt_install docker.io
    mkdir -p "$CACHE"
    log "starting dockerd (log: $CACHE/dockerd.log)"
    # setsid: the engine outlives this script and the CI job step that ran it.
    setsid dockerd --host unix:///var/run/docker.sock >>"$CACHE/dockerd.log" 2>&1 </dev/null &
    local deadline=$((SECONDS + 60))
    until engine_answers; do
        ((SECONDS < deadline)) || die "dockerd did not answer within 60 s; see $CACHE/dockerd.log"
        sleep 0.5
    done
    log "engine answers: $(docker version --format '{{.Server.Version}}')"
}

install_compose() {
    docker compose version >/dev/null 2>&1 && return 0
    local cached="$CACHE/compose/$COMPOSE_VERSION/docker-compose"
    if [[ ! -x "$cached" ]]; then
        local go_bin
        go_bin=$(command -v go || echo /usr/local/go/bin/go)
        [[ -x "$go_bin" ]] || die "compose v2 is missing and there is no Go toolchain to build it \
(install Go >= 1.21, or Docker's compose plugin from your distribution)"
        log "building the compose plugin $COMPOSE_VERSION from the Go module proxy (~2 min)"
        local work
        work=$(mktemp -d)
        GOBIN="$work" GOPATH="$CACHE/go" GOFLAGS=-modcacherw "$go_bin" install -trimpath \
            -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
            "github.com/docker/compose/v2/cmd@$COMPOSE_VERSION" >&2
        mkdir -p "$(dirname "$cached")"
        mv "$work/cmd" "$cached"
        rm -rf "$work"
    fi
    mkdir -p "$PLUGIN_DIR"
    install -m 0755 "$cached" "$PLUGIN_DIR/docker-compose"
    docker compose version >&2
}

debian_mirror() {
    # The mirror apt on this machine already uses for Debian (deb822 or one-line sources).
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
        2>/dev/null | grep -v '^\s*#' | grep -oE '(https?|file)://[^ ]*/debian/?(\s|$)' \
        | head -n1 | tr -d '[:space:]' || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

make_base() {
    docker image inspect "$BASE" >/dev/null 2>&1 && return 0
    if timeout 60 docker pull "$BASE" >/dev/null 2>&1; then
        log "pulled $BASE"
        return 0
    fi
    [[ $BASE == debian:bookworm* ]] || die "$BASE cannot be pulled and only debian:bookworm* \
can be made here; set BASE to an image your registry or mirror serves"
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    local mirror rootfs
    mirror=${DEBIAN_MIRROR:-$(debian_mirror)}
    rootfs=$(mktemp -d)
    log "no registry answers: making $BASE with debootstrap from $mirror (~1 min)"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >&2
    # Where outbound HTTPS goes through a proxy with its own CA, builds need that CA too. It goes
    # only into this locally made base image, never into an image the project ships.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
        chroot "$rootfs" update-ca-certificates >&2
    fi
    # apt-get clean keeps the image small; the man dirs stay (openjdk's postinst needs them).
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
    mkdir -p "$rootfs"/usr/share/man/man{1..8}
    echo "deb $mirror bookworm main" >"$rootfs/etc/apt/sources.list"
    tar --numeric-owner -C "$rootfs" -c . | docker import -c 'CMD ["bash"]' - "$BASE" >&2
    rm -rf "$rootfs"
    log "made $BASE ($(docker image inspect -f '{{.Size}}' "$BASE") bytes)"
}

start_engine
install_compose
make_base
log "ready: engine, compose $(docker compose version --short), base image $BASE"
