#!/bin/sh
# As the official image: no config file, listen on every interface without protected mode (the
# container network is the boundary), data in the working directory /data.
set -eu
if [ "${1:-}" = "redis-server" ]; then
    shift
    exec redis-server --bind 0.0.0.0 --protected-mode no --dir /data "$@"
fi
exec "$@"
