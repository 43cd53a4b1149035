#!/usr/bin/env bash
# Submit a trex run to a Ray cluster as a Ray job, with the project's one runtime environment.
#
#   RAY_ADDRESS=http://HEAD:8265 scripts/submit.sh sentiment --max-nodes 8 --run-dir s3://bucket/trex/run1
#   scripts/submit.sh --address http://127.0.0.1:8265 --no-wait task.yaml storage_path=s3://bucket/trex
#
# Everything after the options is passed to `trex run`. The job's driver joins the cluster
# (RAY_ADDRESS is set for it by Ray), reserves no resources, and stores the run under the task's
# storage_path (a shared folder or a bucket), where `trex report` / `trex status` read it.
#
# Token authentication (Ray >= 2.60): a cluster started while ~/.ray/auth_token exists, or with
# RAY_AUTH_MODE=token, refuses clients that do not send the token; `ray job submit` only sends it
# when RAY_AUTH_MODE=token is set in its own environment. This script sets RAY_AUTH_MODE=token when
# it is unset and a token is available (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token);
# export RAY_AUTH_MODE=disabled to talk to a cluster started with authentication off.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ADDRESS="${RAY_ADDRESS:-http://127.0.0.1:8265}"
WAIT=()
SUBMISSION_ID=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --address) ADDRESS="$2"; shift 2 ;;
    --no-wait) WAIT=(--no-wait); shift ;;
    --submission-id) SUBMISSION_ID=(--submission-id "$2"); shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--address URL] [--no-wait] [--submission-id ID] TASK [trex run options]" >&2; exit 2; }

if [[ -z "${RAY_AUTH_MODE:-}" ]]; then
  if [[ -n "${RAY_AUTH_TOKEN:-}" || -f "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]]; then
    export RAY_AUTH_MODE=token
  fi
fi

RAY="${RAY:-ray}"
cd "$REPO"  # runtime_env.yaml's working_dir "." is the repository
exec "$RAY" job submit --address "$ADDRESS" --runtime-env cluster/runtime_env.yaml \
  "${WAIT[@]}" "${SUBMISSION_ID[@]}" -- python -m trex_ray.cli run "$@"
