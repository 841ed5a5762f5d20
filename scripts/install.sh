#!/usr/bin/env bash
# Installs everything ecc needs on Debian 12 (as root): the BPF toolchain from
# Debian and bookworm-backports, then ecc itself. `--dev` adds the test tools
# and the docs tools (mkdocs, mkdocs-material, mkdocs-click: pyproject's dev extra).
# Safe to run again: each step checks first.
set -euo pipefail

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    *) echo "usage: $0 [--dev]" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

backports=/etc/apt/sources.list.d/bookworm-backports.sources
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # Same mirror and component as the bookworm entry, so it works wherever that one does.
  mirror=$(grep -hs -m1 -oP '^URIs:\s*\K\S+(?=.*)' /etc/apt/sources.list.d/debian.sources || true)
  [ -n "$mirror" ] || mirror=$(grep -hs -m1 -oP '^deb\s+\K\S+(?=\s+bookworm\s)' /etc/apt/sources.list || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" | $sudo tee "$backports" >/dev/null
  need_update=1
fi

pkgs=(clang-19 llvm-19 gcc make)
# clang's wasm32-wasi target, for `ecc build --wasm` (WebAssembly user space):
# the C library, the linker, the compiler runtime.
pkgs+=(wasi-libc lld-19 libclang-rt-19-dev-wasm32)
# The distribution registry, for the OCI push/pull tests (started by the tests themselves;
# its package enables a systemd unit, which does nothing where there is no systemd).
if [ "$dev" = 1 ]; then pkgs+=(docker-registry); fi
# Real containers for the image and `ecc build --docker` tests (podman serves the Docker
# API; runc because crun fails in some VMs; debootstrap makes the base image without a
# registry: scripts/base-image.sh), and shellcheck, which actionlint runs on `run:` steps.
if [ "$dev" = 1 ]; then pkgs+=(podman runc debootstrap shellcheck); fi
# Debian's Prometheus server (and promtool) for the exporter tests, which start their own.
if [ "$dev" = 1 ]; then pkgs+=(prometheus); fi
bpo_pkgs=(libbpf-dev libbpf1 bpftool)
missing=()
for p in "${pkgs[@]}" "${bpo_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# bookworm's own libbpf (1.1) lacks BPF_UPROBE, BPF_KSYSCALL...: insist on the backport.
if dpkg --compare-versions "$(dpkg-query -W -f='${Version}' libbpf-dev 2>/dev/null || echo 0)" lt 1:1.4; then
  missing+=(libbpf-dev)
fi
if [ ${#missing[@]} -gt 0 ] || [ "${need_update:-0}" = 1 ]; then
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${pkgs[@]}"
  $sudo apt-get install -y -q --no-install-recommends -t bookworm-backports "${bpo_pkgs[@]}"
fi

py=${PYTHON:-python3}
export PIP_ROOT_USER_ACTION=ignore
# The distribution is ecc-bpf (PyPI's "ecc" is another project); an editable
# install of this tree under its old name "ecc" would own the `ecc` script too.
if $py -m pip show ecc 2>/dev/null | grep -qxF "Editable project location: $here"; then
  $py -m pip uninstall -y -q ecc
fi
if [ "$dev" = 1 ]; then
  $py -m pip install -q --disable-pip-version-check -e "$here[dev]" --config-settings editable_mode=compat
else
  $py -m pip install -q --disable-pip-version-check -e "$here[yaml,oci,init,docker,exporter,wasm]" --config-settings editable_mode=compat
fi
# An editable install is not byte-compiled; compile once so each start is quick.
$py -m compileall -q "$here/ecc" >/dev/null || true
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
echo "ecc $($py -m ecc --version | awk '{print $NF}') installed; clang: $(command -v clang-19), bpftool: $(command -v bpftool || echo /usr/sbin/bpftool)"
