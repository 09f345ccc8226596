#!/usr/bin/env bash
# Deployment checks beyond the test suite, and the set-up the suite's deploy tests need.
#
#   deploy/check.sh tools     install the check tools: deploy/requirements-checks.txt into .venv, checkov into
#                             deploy/.venv-checkov, Debian's prometheus (promtool) when root; about 1 minute
#   deploy/check.sh test      the offline checks: pytest tests/deploy (renders, validates, checkov, hadolint,
#                             promtool); about 20 seconds
#   deploy/check.sh image     build the image with podman and smoke-test it: read-only root, /tmp on tmpfs, no
#                             capabilities, embedded stores; prints the image size and the seconds from
#                             `podman run` to /readyz answering 200 (several minutes: the build needs PyPI)
#
# Environment for `image`:
#   PYTHON_IMAGE   base image (default: the Containerfile's). Where the container registry is out of reach,
#                  DEBIAN_BASE=1 bootstraps a python3.11 bookworm base from Debian's mirror with mmdebstrap
#                  (localhost/debian-python:3.11-bookworm) and uses it instead.
#   PIP_CERT_FILE  a CA bundle for pip inside the build (TLS-intercepting proxies); passed as a build secret
#   PODMAN_BUILD   extra `podman build` options (e.g. "--isolation chroot" inside an unprivileged sandbox)
#   PODMAN_RUN     extra `podman run` options (e.g. "--runtime runc --ulimit nofile=20000:20000
#                  --ulimit nproc=16384:16384" where the default rlimits cannot be raised)
#   READY_WITHIN   seconds allowed until /readyz answers 200 (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."

tools() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet -r deploy/requirements-checks.txt
  [ -x deploy/.venv-checkov/bin/checkov ] || python3 -m venv deploy/.venv-checkov
  deploy/.venv-checkov/bin/pip install --quiet -r deploy/requirements-checkov.txt
  if ! command -v promtool >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    else
      echo "promtool missing: sudo apt-get install --no-install-recommends prometheus" >&2
    fi
  fi
}

run_tests() {
  .venv/bin/python -m pytest tests/deploy -q "$@"
}

debian_base() {
  local tag=localhost/debian-python:3.11-bookworm
  if ! podman image exists "$tag"; then
    command -v mmdebstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
    local tarball
    tarball=$(mktemp --suffix=.tar)
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$tarball" \
      "deb http://deb.debian.org/debian bookworm main" \
      "deb http://deb.debian.org/debian bookworm-updates main" \
      "deb http://deb.debian.org/debian-security bookworm-security main"
    podman import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' "$tarball" "$tag" >/dev/null
    rm -f "$tarball"
  fi
  echo "$tag"
}

image() {
  local build_args=(--format docker -f Containerfile -t localhost/medchat:check)
  local base=${PYTHON_IMAGE:-}
  if [ "${DEBIAN_BASE:-0}" = 1 ]; then base=$(debian_base); fi
  [ -z "$base" ] || build_args+=(--build-arg "PYTHON_IMAGE=$base")
  [ -z "${PIP_CERT_FILE:-}" ] || build_args+=(--secret "id=pip_cert,src=$PIP_CERT_FILE")
  build_args+=(--build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)")
  build_args+=(--build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)")
  local started=$SECONDS
  # shellcheck disable=SC2086 # PODMAN_BUILD is a list of options
  podman build ${PODMAN_BUILD:-} "${build_args[@]}" .
  echo "built in $((SECONDS - started)) s"

  local port=${PORT:-18765}
  name=medchat-check-$$ volume=medchat-check-$$  # global: the EXIT trap uses them
  # shellcheck disable=SC2086 # PODMAN_RUN is a list of options
  podman run --detach --pull=never --no-healthcheck --name "$name" ${PODMAN_RUN:-} --network host --read-only \
    --tmpfs /tmp:rw,size=512m,mode=1777 --cap-drop ALL --security-opt no-new-privileges \
    --volume "$volume:/data" --env "MEDCHAT_PORT=$port" localhost/medchat:check >/dev/null
  local t0 code=000
  t0=$(date +%s.%N)
  trap 'podman rm --force "$name" >/dev/null 2>&1; podman volume rm --force "$volume" >/dev/null 2>&1' EXIT
  for _ in $(seq 1 $((${READY_WITHIN:-30} * 10))); do
    code=$(curl --silent --output /dev/null --write-out '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
    [ "$code" = 200 ] && break
    sleep 0.1
  done
  local elapsed
  elapsed=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
  if [ "$code" != 200 ]; then
    podman logs "$name" >&2 || true
    echo "FAILED: /readyz answered $code, not 200, within ${READY_WITHIN:-30} s" >&2
    exit 1
  fi
  for path in /healthz / /metrics; do
    code=$(curl --silent --output /dev/null --write-out '%{http_code}' "http://127.0.0.1:$port$path")
    [ "$code" = 200 ] || { echo "FAILED: GET $path answered $code" >&2; exit 1; }
  done
  podman exec "$name" sh -c 'tesseract --version >/dev/null 2>&1 && pdftoppm -v >/dev/null 2>&1' \
    || { echo "FAILED: tesseract or pdftoppm missing from the image" >&2; exit 1; }
  if podman exec "$name" touch /probe 2>/dev/null; then echo "FAILED: the root filesystem is writable" >&2; exit 1; fi
  echo "image localhost/medchat:check: $(podman image inspect localhost/medchat:check --format '{{.Size}}' \
    | python3 -c 'import sys; print(f"{int(sys.stdin.read()) / 1e6:.0f} MB")'); /readyz 200 after ${elapsed} s"
  echo "(from podman run, embedded stores, read-only root)"
}

case "${1:-}" in
  tools) tools ;;
  test) shift; run_tests "$@" ;;
  image) image ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2 ;;
esac
