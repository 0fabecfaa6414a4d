#!/usr/bin/env bash
# Start an OmniRT worker pool on Ascend NPUs: CANN's environment, the cards it may use, then `omnirt worker`.
#   OMNIRT_REDIS_URL=redis://host:6379/0 NPUS=0 POOL=avatar deploy/ascend/run-worker.sh --models musetalk-1.5
set -euo pipefail

CANN_ENV="${CANN_ENV:-/usr/local/Ascend/ascend-toolkit/set_env.sh}"
OMNIRT_VENV="${OMNIRT_VENV:-/opt/omnirt/venv}"
NPUS="${NPUS:-0}"
POOL="${POOL:-ascend}"

if [[ -z "${OMNIRT_REDIS_URL:-}" ]]; then
    echo "OMNIRT_REDIS_URL is not set: a worker needs the fleet's Redis" >&2
    exit 2
fi
if [[ ! -f "$CANN_ENV" ]]; then
    echo "CANN's environment script is not at $CANN_ENV (set CANN_ENV)" >&2
    exit 2
fi
# CANN's script reads unset variables; load it before `set -u` matters.
set +u
# shellcheck disable=SC1090
source "$CANN_ENV"
set -u

export ASCEND_RT_VISIBLE_DEVICES="$NPUS"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec "$OMNIRT_VENV/bin/omnirt" worker --device ascend --name "${POOL}@$(hostname)" "$@"
