#!/usr/bin/env bash
# Makes the base image `debian:bookworm-slim` locally with debootstrap, for
# machines whose podman cannot pull from an image registry (Debian's package
# mirror is enough). Trimmed the way Debian's own slim image is: no apt lists
# or caches, and dpkg told to leave out docs, man pages and translations, so
# images built on it stay small too. Does nothing when the image exists.
# Needs root, podman and debootstrap (scripts/install.sh --dev installs them).
set -euo pipefail

image=${1:-docker.io/library/debian:bookworm-slim}
if podman image exists "$image"; then
  echo "$image exists"
  exit 0
fi

# The same mirror as the host's bookworm entry, so this works wherever apt does.
mirror=$(grep -hs -m1 -oP '^URIs:\s*\K\S+' /etc/apt/sources.list.d/debian.sources || true)
[ -n "$mirror" ] || mirror=$(grep -hs -m1 -oP '^deb\s+\K\S+(?=\s+bookworm\s)' /etc/apt/sources.list || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  tail -20 "$rootfs.log" >&2
  rm -f "$rootfs.log"
  echo "base-image.sh: debootstrap failed (log above)" >&2
  exit 1
}
rm -f "$rootfs.log"

# What Debian's slim image does (debuerreotype's slimify): keep copyrights only.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
printf 'Acquire::Languages "none";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
printf 'APT::Install-Recommends "false";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-recommends"
# The suites Debian's image lists, in its deb822 form.
rm -f "$rootfs/etc/apt/sources.list"
case "$mirror" in
  */debian|*/debian/) security=${mirror%/}-security ;;
  *) security=http://deb.debian.org/debian-security ;;
esac
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
  "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* "$rootfs"/tmp/*

tar -C "$rootfs" --numeric-owner -c . \
  | podman import -q --change 'CMD ["bash"]' - "$image" >/dev/null
echo "$image imported ($(podman image inspect --format '{{.Size}}' "$image") bytes)"
