#!/usr/bin/env bash
# Build and push the image to Docker Hub, and deploy infra/main.bicep with the Azure CLI. Idempotent: every
# step can be run again (the resource group and the deployment converge to the same state).
#
#   scripts/deploy.sh [--dry-run] build|push|deploy|all
#
# Environment:
#   IMAGE               Docker Hub image and tag, e.g. airparadis/tweet-sentiment:v1.2.0   (all steps)
#   DOCKERHUB_USERNAME  Docker Hub account                                                (push; deploy if private)
#   DOCKERHUB_TOKEN     Docker Hub access token                                           (push; deploy if private)
#   DOCKERHUB_PRIVATE   true when the repository is private: the token goes to Key Vault   (deploy, default false)
#   RESOURCE_GROUP      Azure resource group                                              (deploy)
#   LOCATION            Azure region, default westeurope                                  (deploy)
#   ALERT_EMAIL         who receives the alerts                                           (deploy)
#   STAFF_CLIENT_ID     Entra ID app registration for staff sign-in on the page (optional) (deploy)
# --dry-run prints every command (secrets masked) and runs none; `az login` must have run before deploy.
# Secrets never pass through the template: deploy generates the prediction signing keys into Key Vault (once)
# and the app reads them through Key Vault references with its managed identity.
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
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
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

# The object id and kind of the signed-in Azure principal (a user, or the workflow's service principal).
deployer() {
  if [[ "$DRY_RUN" == true ]]; then
    echo "+ az account show / az ad signed-in-user show (the deployer's object id)" >&2
    echo "00000000-0000-0000-0000-000000000000 User"
  elif [[ "$(az account show --query user.type --output tsv)" == servicePrincipal ]]; then
    echo "$(az ad sp show --id "$(az account show --query user.name --output tsv)" --query id --output tsv) ServicePrincipal"
  else
    echo "$(az ad signed-in-user show --query id --output tsv) User"
  fi
}

# Writes a Key Vault secret from a file readable by this user only, so its value is never on a command line.
set_secret() {
  local vault="$1" secret="$2" producer="$3" file
  file="$(mktemp)"
  chmod 600 "$file"
  if [[ "$DRY_RUN" == false ]]; then
    "$producer" >"$file"
  fi
  run az keyvault secret set --vault-name "$vault" --name "$secret" --file "$file" --output none
  rm -f "$file"
}

new_signing_key() { openssl rand -base64 48 | tr -d '\n'; }
dockerhub_token() { printf '%s' "$DOCKERHUB_TOKEN"; }
current_signing_key() {
  az keyvault secret show --vault-name "$VAULT" --name prediction-signing-key --query value --output tsv | tr -d '\n'
}

secret_exists() {
  [[ "$DRY_RUN" == false ]] && az keyvault secret show --vault-name "$1" --name "$2" --output none 2>/dev/null
}

deploy() {
  require IMAGE RESOURCE_GROUP ALERT_EMAIL
  local tag="${IMAGE##*:}" private="${DOCKERHUB_PRIVATE:-false}" principal kind
  if [[ "$private" == true ]]; then
    require DOCKERHUB_USERNAME DOCKERHUB_TOKEN
  fi
  read -r principal kind < <(deployer)
  local name="tweet-sentiment-${tag//[^A-Za-z0-9._-]/-}"
  run az group create --name "$RESOURCE_GROUP" --location "$LOCATION" --output none
  run az deployment group create --resource-group "$RESOURCE_GROUP" --name "$name" \
    --template-file infra/main.bicep --parameters infra/main.parameters.json \
    --parameters "image=$IMAGE" "alertEmail=$ALERT_EMAIL" "dockerHubPrivate=$private" \
    "dockerHubUsername=${DOCKERHUB_USERNAME:-}" "staffSignInClientId=${STAFF_CLIENT_ID:-}" \
    "deployerPrincipalId=$principal" "deployerPrincipalType=$kind" \
    --query properties.outputs --output json
  VAULT="<key vault of the deployment>"
  APP="<function app of the deployment>"
  if [[ "$DRY_RUN" == false ]]; then
    VAULT="$(az deployment group show -g "$RESOURCE_GROUP" -n "$name" --query properties.outputs.keyVaultName.value -o tsv)"
    APP="$(az deployment group show -g "$RESOURCE_GROUP" -n "$name" --query properties.outputs.functionAppName.value -o tsv)"
  fi
  # Generated once; rotation is a separate, deliberate step (docs/operations.md).
  if ! secret_exists "$VAULT" prediction-signing-key; then
    set_secret "$VAULT" prediction-signing-key new_signing_key
  fi
  if ! secret_exists "$VAULT" prediction-signing-key-previous; then
    set_secret "$VAULT" prediction-signing-key-previous current_signing_key
  fi
  if [[ "$private" == true ]]; then
    set_secret "$VAULT" dockerhub-token dockerhub_token
  fi
  # Key Vault references resolve when the app starts: restart so new secrets are read.
  run az functionapp restart --resource-group "$RESOURCE_GROUP" --name "$APP"
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
