#!/bin/sh
# `tritonserver` in the image: picks the XTTS artifact, then runs the real server with the arguments
# given (the chart and compose call it by this name).
# - XTTS_MODEL_PATH without an export (no manifest.json): the tiny test weights built into the image,
#   which /health and /v1/engines flag as `test_weights: true` (noise, not speech).
# - No GPU visible: no pinned host memory pool (it needs the CUDA driver) and no GPU metrics.
set -eu
if [ ! -f "${XTTS_MODEL_PATH:-/models/xtts}/manifest.json" ]; then
    echo "tritonserver: no exported XTTS at ${XTTS_MODEL_PATH:-/models/xtts}; serving the tiny TEST weights" >&2
    export XTTS_MODEL_PATH=/opt/tts-gateway/xtts-tiny
fi
set -- --backend-directory=/opt/tritonserver/backends "$@"
if [ ! -e /dev/nvidiactl ] || [ "${CUDA_VISIBLE_DEVICES-unset}" = "" ] || [ "${CUDA_VISIBLE_DEVICES-unset}" = "-1" ]; then
    case " $* " in *" --allow-gpu-metrics="*) ;; *) set -- "$@" --allow-gpu-metrics=false ;; esac
    case " $* " in *" --pinned-memory-pool-byte-size="*) ;; *) set -- "$@" --pinned-memory-pool-byte-size=0 ;; esac
fi
exec /opt/tritonserver/bin/tritonserver "$@"
