#!/usr/bin/env bash
# Builds and validates the kar container image offline (no registry is reachable):
#   1. release binaries of kar and kar-injector, stripped;
#   2. a build context in target/image-context: the binaries, every shared library
#      `ldd` says they load (glibc's loader included), CA certificates, a non-root user;
#   3. checks the layout: each binary's libraries resolve inside the root file system,
#      and `kar version` runs chrooted into it (what the container would run);
#   4. the greeter demo with the image's kar as the sidecars (chrooted, sharing the
#      host's loopback as a pod shares its network namespace) and node outside;
#   5. `podman build -f deploy/Containerfile` FROM scratch, the image inspected
#      (entrypoint, size, files); `podman run` is tried, and its failure reported
#      (this sandbox cannot run containers: crun has no cgroups here).
# Usage: scripts/build-image.sh [TAG]   (default kar:0.1.0). Needs root (chroot), and
# podman for step 5 (apt-get install podman); without podman, steps 1-4 still run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tag="${1:-kar:0.1.0}"
ctx="$root/target/image-context"
fs="$ctx/rootfs"
say() { printf 'build-image: %s\n' "$*"; }

say "cargo build --release -p kar -p kar-injector"
cargo build --release -q -p kar -p kar-injector

rm -rf "$ctx"
mkdir -p "$fs/usr/local/bin" "$fs/etc/ssl/certs" "$fs/tmp" "$ctx/home"
chmod 1777 "$fs/tmp"
for bin in kar kar-injector; do
    strip -o "$fs/usr/local/bin/$bin" "target/release/$bin"
done
# The libraries the binaries load, at the paths the loader looks for them.
for bin in kar kar-injector; do
    ldd "target/release/$bin" | awk '/=>/ { print $3 } /^[[:space:]]*\// { print $1 }'
done | sort -u | while read -r lib; do
    [[ -n "$lib" ]] && cp -L --parents "$lib" "$fs/"
done
printf 'root:x:0:0:root:/:/sbin/nologin\nkar:x:65532:65532:kar:/var/lib/kar:/sbin/nologin\n' >"$fs/etc/passwd"
printf 'root:x:0:\nkar:x:65532:\n' >"$fs/etc/group"
printf 'hosts: files dns\n' >"$fs/etc/nsswitch.conf"
cp /etc/ssl/certs/ca-certificates.crt "$fs/etc/ssl/certs/"

say "layout check: every library each binary needs is in the image"
for bin in kar kar-injector; do
    missing=$(chroot "$fs" /usr/local/bin/"$bin" -h >/dev/null 2>&1 && echo "" || echo "$bin")
    [[ -z "$missing" ]] || { say "FAILED: $bin does not start inside the image's root"; exit 1; }
done
version=$(chroot "$fs" /usr/local/bin/kar version)
say "kar version (chrooted into the image): $version"

say "greeter demo: the image's kar as both sidecars, the example's node apps outside"
(cd examples/greeter-js && npm install --silent --no-audit --no-fund >/dev/null)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
app_port=$(free_port); server_rt=$(free_port); client_rt=$(free_port); client_app=$(free_port)
home="$fs/var/lib/kar"; mkdir -p "$home"
logs="$ctx/demo-logs"; mkdir -p "$logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$home"; }
trap cleanup EXIT
sidecar() { # $1 runtime port, $2 app port, $3.. flags
    local rt=$1 ap=$2; shift 2
    KAR_HOME=/var/lib/kar chroot "$fs" /usr/local/bin/kar run -app greeter-image -runtime_port "$rt" -app_port "$ap" -v info "$@" >"$logs/kar-$rt.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$rt/kar/v1/system/health" >/dev/null && return 0; sleep 0.1; done
    say "FAILED: the sidecar on $rt did not start"; cat "$logs/kar-$rt.log"; exit 1
}
sidecar "$server_rt" "$app_port" -service greeter
KAR_RUNTIME_PORT=$server_rt KAR_APP_PORT=$app_port node examples/greeter-js/server.js >"$logs/server.log" 2>&1 &
pids+=($!)
sidecar "$client_rt" "$client_app"
KAR_RUNTIME_PORT=$client_rt KAR_APP_PORT=$client_app timeout 120 node examples/greeter-js/client.js | tee "$logs/client.log"
grep -q 'call helloText -> Hello kar' "$logs/client.log" || { say "FAILED: the greeter demo"; exit 1; }
say "greeter demo: ok"
cleanup; trap - EXIT; pids=()
mkdir -p "$ctx/home"

if ! command -v podman >/dev/null; then
    say "podman is not installed: the image itself was not built (apt-get install podman)"
    exit 0
fi
say "podman build -f deploy/Containerfile -t $tag"
podman build -q -f deploy/Containerfile -t "$tag" "$ctx" >/dev/null
podman image inspect "$tag" --format 'entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}} user={{.Config.User}} size={{.Size}} bytes'
saved="$ctx/saved"; rm -rf "$saved"; mkdir -p "$saved"
podman save --format docker-dir -o "$saved/image" "$tag" >/dev/null 2>&1
files=$(for layer in "$saved"/image/*; do tar -tf "$layer" 2>/dev/null || true; done | sort -u)
for want in usr/local/bin/kar usr/local/bin/kar-injector etc/ssl/certs/ca-certificates.crt etc/passwd; do
    grep -qx "$want" <<<"$files" || { say "FAILED: $want is not in the image"; exit 1; }
done
say "image layers hold: $(grep -c . <<<"$files") entries, binaries and libraries included"
if out=$(podman run --rm "$tag" version 2>&1); then
    say "podman run $tag version: $out"
else
    say "podman run is not possible here (validated by chroot above instead): $(head -c 300 <<<"$out" | tr '\n' ' ')"
fi
