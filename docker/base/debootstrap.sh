#!/usr/bin/env bash
# A Debian bookworm base image made locally (for machines that reach Debian's mirror but no image
# registry): debootstrap's minbase, without apt lists, docs, man pages or locales, imported as
#   docker/base/debootstrap.sh NAME:TAG
# It stands in for debian:bookworm-slim, the images' public default base.
set -euo pipefail
tag="$1"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
root=$(mktemp -d /var/tmp/tts-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
# As the official slim image: no docs or man pages from later apt-get installs either.
cat > "$root"/etc/dpkg/dpkg.cfg.d/docker-slim <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
echo 'APT::Install-Recommends "false";' > "$root"/etc/apt/apt.conf.d/docker-no-recommends
tar -C "$root" -c . | docker import -m "debootstrap minbase bookworm" - "$tag-imported" >/dev/null
# An imported image has no build history, and BuildKit then caches no step built on it (every build
# would start over); one classic-builder step on top gives it the history BuildKit's cache keys need.
printf 'FROM %s\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nCMD ["bash"]\n' "$tag-imported" \
    | DOCKER_BUILDKIT=0 docker build -q -t "$tag" - >/dev/null
docker rmi "$tag-imported" >/dev/null
