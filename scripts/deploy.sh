#!/usr/bin/env bash
# Build and push the image to Docker Hub, and deploy infra/main.bicep with the Azure CLI. Idempotent: every
# step can be run again (the resource group and the deployment converge to the same state).
#
#   scripts/deploy.sh [--dry-run] build|push|deploy|all
#
# Environment:
#   IMAGE               Docker Hub image and tag, e.g. airparadis/tweet-sentiment:v1.2.0   (all steps)
#   DOCKERHUB_USERNAME  Docker Hub account                                                (push, deploy)
#   DOCKERHUB_TOKEN     Docker Hub access token                                           (push, deploy)
#   RESOURCE_GROUP      Azure resource group                                              (deploy)
#   LOCATION            Azure region, default westeurope                                  (deploy)
#   ALERT_EMAIL         who receives the wrong-prediction alert                           (deploy)
# --dry-run prints every command (secrets masked) and runs none; `az login` must have run before deploy.
set -euo pipefail

cd "$(dirname "$0")/.."

DRY_RUN=false
if [[ "${1:-}" == "--dry-run" ]]; then
  DRY_RUN=true
  shift
fi
STEP="${1:-}"
LOCATION="${LOCATION:-westeurope}"

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

require() {
  local name
  for name in "$@"; do
    if [[ -z "${!name:-}" ]]; then
      echo "error: $name is not set (see scripts/deploy.sh --help)" >&2
      exit 2
    fi
  done
}

# Runs a command, or prints it under --dry-run. Arguments given as SECRET:NAME are passed as the value of
# the variable NAME and printed as ***.
run() {
  local shown=() actual=() argument
  for argument in "$@"; do
    if [[ "$argument" == *SECRET:* ]]; then
      local name="${argument##*SECRET:}"
      shown+=("${argument%%SECRET:*}***")
      actual+=("${argument%%SECRET:*}${!name}")
    else
      shown+=("$argument")
      actual+=("$argument")
    fi
  done
  echo "+ ${shown[*]}"
  if [[ "$DRY_RUN" == false ]]; then
    "${actual[@]}"
  fi
}

build() {
  require IMAGE
  run docker build --pull --tag "$IMAGE" .
}

push() {
  require IMAGE DOCKERHUB_USERNAME DOCKERHUB_TOKEN
  echo "+ docker login --username $DOCKERHUB_USERNAME --password-stdin  (token from DOCKERHUB_TOKEN)"
  if [[ "$DRY_RUN" == false ]]; then
    printf '%s' "$DOCKERHUB_TOKEN" | docker login --username "$DOCKERHUB_USERNAME" --password-stdin
  fi
  run docker push "$IMAGE"
}

deploy() {
  require IMAGE RESOURCE_GROUP ALERT_EMAIL DOCKERHUB_USERNAME DOCKERHUB_TOKEN
  local tag="${IMAGE##*:}"
  run az group create --name "$RESOURCE_GROUP" --location "$LOCATION" --output none
  run az deployment group create --resource-group "$RESOURCE_GROUP" \
    --name "tweet-sentiment-${tag//[^A-Za-z0-9._-]/-}" \
    --template-file infra/main.bicep --parameters infra/main.parameters.json \
    --parameters "image=$IMAGE" "alertEmail=$ALERT_EMAIL" \
    "dockerHubUsername=SECRET:DOCKERHUB_USERNAME" "dockerHubToken=SECRET:DOCKERHUB_TOKEN" \
    --query properties.outputs --output json
}

case "$STEP" in
  build) build ;;
  push) push ;;
  deploy) deploy ;;
  all) build && push && deploy ;;
  -h | --help | "") usage ;;
  *)
    echo "error: unknown step '$STEP'" >&2
    usage
    ;;
esac
