#!/usr/bin/env bash
# Ships one image, by digest, to one Kubernetes namespace: runs the migration Job under a unique
# name, waits until it completes or fails, and only when it completed rolls the Deployment to the
# same image. A failed migration leaves the Deployment untouched, so the running version is the
# one kept; a failed rollout is undone. Every failure pages on-call and lands in the job summary.
#
#   DEPLOY_ENVIRONMENT=staging DEPLOY_NAMESPACE=yomu-staging \
#   DEPLOY_IMAGE=ghcr.io/takashiaihara/yomu-api@sha256:<64 hex> DEPLOY_VERSION=<git sha> \
#   ONCALL_WEBHOOK_URL=https://... scripts/deploy.sh
#
# Settings (environment):
#   DEPLOY_ENVIRONMENT      name people know the environment by (staging, production)   required
#   DEPLOY_NAMESPACE        namespace holding Deployment yomu-api                         required
#   DEPLOY_IMAGE            image by digest: <repository>@sha256:<64 hex>                 required
#   DEPLOY_VERSION          app.kubernetes.io/version label value for the migration pod   required
#   ONCALL_WEBHOOK_URL      receives a JSON POST on every failure                         required
#   MIGRATION_JOB_MANIFEST  the Job to render                      [k8s/yomu/migration-job.yaml]
#   MIGRATION_TIMEOUT       seconds to wait for the Job to complete or fail               [300]
#   POLL_INTERVAL           seconds between looks at the Job's conditions                 [5]
#   ROLLOUT_TIMEOUT         seconds to wait for the Deployment's rollout                  [300]
#   GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT   make the Job name unique per run      [local, 1]
#   GITHUB_STEP_SUMMARY     file the Markdown summary is appended to (when set)
#
# Exit codes:
#   0   migrated and rolled out
#   2   configuration problem (all of them are listed); nothing was changed
#   10  the migration Job failed; the Deployment was not touched
#   11  the migration Job neither completed nor failed within MIGRATION_TIMEOUT; the Deployment
#       was not touched and the Job was left alone (killing a migration midway helps no one)
#   12  the rollout failed and was undone (or there was nothing to undo)
#   13  the rollout failed and undoing it failed too: a person has to look now
#   14  kubectl could not do what was asked (cluster unreachable, request refused) before
#       anything changed in the Deployment
#   130, 143  interrupted by SIGINT or SIGTERM (a cancelled run, a job timeout); paged
set -euo pipefail

readonly DEPLOYMENT=yomu-api
readonly JOB_PREFIX=yomu-migration
readonly JOB_CONTAINER=migrate
# kubectl set image addresses containers and init containers alike by name.
readonly DEPLOYMENT_CONTAINERS=(api wait-for-schema)

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

environment=${DEPLOY_ENVIRONMENT:-}
namespace=${DEPLOY_NAMESPACE:-}
image=${DEPLOY_IMAGE:-}
version=${DEPLOY_VERSION:-}
webhook=${ONCALL_WEBHOOK_URL:-}
manifest=${MIGRATION_JOB_MANIFEST:-$repo_root/k8s/yomu/migration-job.yaml}
migration_timeout=${MIGRATION_TIMEOUT:-300}
poll_interval=${POLL_INTERVAL:-5}
rollout_timeout=${ROLLOUT_TIMEOUT:-300}
run_id=${GITHUB_RUN_ID:-local}
run_attempt=${GITHUB_RUN_ATTEMPT:-1}

job=""
phase="checking the settings and the cluster"
finished=0
previous_image=""
migrate_exit=""
job_logs=""

log() { printf '%s\n' "$*"; }
error() { printf '::error title=deploy %s::%s\n' "${environment:-?}" "$*"; }

json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

run_url() {
  if [[ -n ${GITHUB_SERVER_URL:-} && -n ${GITHUB_REPOSITORY:-} && -n ${GITHUB_RUN_ID:-} ]]; then
    printf '%s/%s/actions/runs/%s' "$GITHUB_SERVER_URL" "$GITHUB_REPOSITORY" "$GITHUB_RUN_ID"
  fi
}

# The webhook URL is a secret: it goes to curl on stdin, never on its command line or in a log.
page() {
  local status=$1 message=$2
  [[ -n $webhook ]] || return 0
  local payload
  payload=$(printf '{"text":%s,"status":%s,"environment":%s,"namespace":%s,"image":%s,"version":%s,"job":%s,"previousImage":%s,"migrationExitCode":%s,"runUrl":%s}' \
    "$(json_string "yomu deploy to ${environment:-?} failed: $message")" "$(json_string "$status")" \
    "$(json_string "$environment")" "$(json_string "$namespace")" "$(json_string "$image")" \
    "$(json_string "$version")" "$(json_string "$job")" "$(json_string "$previous_image")" \
    "${migrate_exit:-null}" "$(json_string "$(run_url)")")
  if printf 'url = %s\n' "$(json_string "$webhook")" |
    curl --config - --silent --show-error --fail --max-time 10 --retry 2 \
      --header 'content-type: application/json' --data-binary "$payload" --output /dev/null; then
    log "paged on-call: $status"
  else
    error "could not page on-call through ONCALL_WEBHOOK_URL; the failure above still stands"
  fi
}

# shellcheck disable=SC2016 # the backticks are Markdown code spans, not command substitutions
summary() {
  local outcome=$1 detail=$2
  [[ -n ${GITHUB_STEP_SUMMARY:-} ]] || return 0
  {
    printf '## Deploy to %s: %s\n\n%s\n\n' "${environment:-?}" "$outcome" "$detail"
    printf '| | |\n| --- | --- |\n'
    printf '| namespace | `%s` |\n| image | `%s` |\n| version | `%s` |\n' "$namespace" "$image" "$version"
    printf '| migration Job | `%s` |\n| previous image | `%s` |\n' "${job:--}" "${previous_image:--}"
    if [[ -n $migrate_exit ]]; then printf '| migrate exit code | %s (%s) |\n' "$migrate_exit" "$(exit_meaning "$migrate_exit")"; fi
    if [[ -n $job_logs ]]; then
      printf '\n<details><summary>migration log (last 40 lines)</summary>\n\n```text\n%s\n```\n\n</details>\n' \
        "$(tail -n 40 <<<"$job_logs")"
    fi
    printf '\n'
  } >>"$GITHUB_STEP_SUMMARY" || log "::warning::could not write the job summary to GITHUB_STEP_SUMMARY"
}

# Ends the run: summary, page, exit code. Only failures come through here.
fail() {
  local code=$1 status=$2 message=$3
  finished=1
  error "$message"
  summary "failed" "$message"
  page "$status" "$message"
  exit "$code"
}

# The migrator's exit codes (README, "The migration runner").
exit_meaning() {
  case $1 in
    1) echo "a migration failed and was rolled back" ;;
    2) echo "usage or configuration error" ;;
    3) echo "gave up waiting for the migration lock" ;;
    4) echo "verification failed: a changed or out-of-order migration" ;;
    7) echo "the database could not be reached" ;;
    *) echo "unexpected exit code" ;;
  esac
}

k() { kubectl --namespace "$namespace" --request-timeout=30s "$@"; }

check_settings() {
  local problems=()
  [[ -n $environment ]] || problems+=("DEPLOY_ENVIRONMENT is required (staging, production, ...)")
  [[ $namespace =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] ||
    problems+=("DEPLOY_NAMESPACE must be a Kubernetes namespace name, got '$namespace'")
  [[ $image =~ ^[^@[:space:]]+@sha256:[0-9a-f]{64}$ ]] ||
    problems+=("DEPLOY_IMAGE must name the image by digest (<repository>@sha256:<64 hex>), got '$image'")
  [[ ${#version} -le 63 && $version =~ ^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$ ]] ||
    problems+=("DEPLOY_VERSION must be a label value (63 characters of A-Z a-z 0-9 - _ . starting and ending alphanumeric), got '$version'")
  [[ -n $webhook ]] || problems+=("ONCALL_WEBHOOK_URL is required: failures page on-call through it")
  [[ -f $manifest ]] || problems+=("MIGRATION_JOB_MANIFEST: no file at $manifest")
  [[ $migration_timeout =~ ^[1-9][0-9]*$ ]] || problems+=("MIGRATION_TIMEOUT must be whole seconds above 0, got '$migration_timeout'")
  [[ $poll_interval =~ ^[0-9]+(\.[0-9]+)?$ && ! $poll_interval =~ ^0+(\.0+)?$ ]] ||
    problems+=("POLL_INTERVAL must be seconds above 0, got '$poll_interval'")
  [[ $rollout_timeout =~ ^[1-9][0-9]*$ ]] || problems+=("ROLLOUT_TIMEOUT must be whole seconds above 0, got '$rollout_timeout'")
  [[ $run_id =~ ^[a-z0-9]+$ ]] || problems+=("GITHUB_RUN_ID must be lowercase letters and digits, got '$run_id'")
  [[ $run_attempt =~ ^[0-9]+$ ]] || problems+=("GITHUB_RUN_ATTEMPT must be a number, got '$run_attempt'")
  command -v kubectl >/dev/null || problems+=("kubectl is not on PATH")
  command -v node >/dev/null || problems+=("node is not on PATH (it renders the Job manifest)")
  if ((${#problems[@]} > 0)); then
    local problem
    for problem in "${problems[@]}"; do error "$problem"; done
    fail 2 config_error "configuration: ${#problems[@]} problem(s), nothing was changed"
  fi
}

migrate() {
  # A timestamp for people, the run id and attempt so a re-run never collides with its first try.
  job="$JOB_PREFIX-$(date -u +%Y%m%d%H%M%S)-$run_id-$run_attempt"
  if ((${#job} > 63)); then fail 2 config_error "the Job name $job is over Kubernetes' 63 characters"; fi

  local rendered
  if ! rendered=$(node "$repo_root/scripts/render-migration-job.mjs" \
    --manifest "$manifest" --name "$job" --image "$image" --version "$version"); then
    fail 2 config_error "cannot render the migration Job from $manifest (see above); nothing was changed"
  fi
  log "::group::create Job $job"
  printf '%s\n' "$rendered"
  log "::endgroup::"
  if ! k create --filename - <<<"$rendered"; then
    fail 14 kubectl_error "kubectl could not create the migration Job $job; the Deployment was not touched"
  fi

  # `kubectl wait --for=condition=complete` alone sits out its whole timeout when the Job fails,
  # so both terminal conditions are polled together.
  local deadline=$((SECONDS + migration_timeout)) conditions outcome=""
  while :; do
    if conditions=$(k get job "$job" --output 'jsonpath={range .status.conditions[*]}{.type}={.status}{"\n"}{end}'); then
      if grep -qx 'Failed=True' <<<"$conditions"; then outcome=failed; break; fi
      if grep -qx 'Complete=True' <<<"$conditions"; then outcome=complete; break; fi
    else
      log "::warning::could not read Job $job's status; trying again"
    fi
    if ((SECONDS >= deadline)); then outcome=timeout; break; fi
    sleep "$poll_interval"
  done

  log "::group::migration log ($job)"
  job_logs=$(k logs --selector "job-name=$job" --container "$JOB_CONTAINER" --prefix --tail 500 2>&1) || true
  printf '%s\n' "$job_logs"
  log "::endgroup::"

  [[ $outcome == complete ]] && return 0

  # The Job may have retried (backoffLimit); the newest pod's exit code is the one that ended it.
  migrate_exit=$(k get pods --selector "job-name=$job" --sort-by .metadata.creationTimestamp \
    --output 'jsonpath={range .items[*]}{.status.containerStatuses[?(@.name=="migrate")].state.terminated.exitCode}{"\n"}{end}' \
    2>/dev/null | grep -E '^[0-9]+$' | tail -n 1) || migrate_exit=""
  log "::group::describe Job $job"
  k describe job "$job" 2>&1 || true
  log "::endgroup::"

  local kept="the Deployment was not touched and keeps running ${previous_image:-its current image}"
  if [[ $outcome == failed ]]; then
    local why=""
    [[ -z $migrate_exit ]] || why=" (migrate exited $migrate_exit: $(exit_meaning "$migrate_exit"))"
    fail 10 migration_failed "migration Job $job failed$why; $kept"
  fi
  fail 11 migration_timeout "migration Job $job did not finish within ${migration_timeout}s; it was left running, and $kept"
}

roll_out() {
  local assignments=() container
  for container in "${DEPLOYMENT_CONTAINERS[@]}"; do assignments+=("$container=$image"); done
  if ! k set image "deployment/$DEPLOYMENT" "${assignments[@]}"; then
    fail 14 kubectl_error "migrated, but kubectl could not update deployment/$DEPLOYMENT; it keeps running ${previous_image:-its current image}"
  fi
  if kubectl --namespace "$namespace" rollout status "deployment/$DEPLOYMENT" --timeout "${rollout_timeout}s"; then
    return 0
  fi

  # Undo steps back one revision: right only when this deploy made one.
  if [[ $previous_image == "$image" ]]; then
    fail 12 rollout_failed "rollout of deployment/$DEPLOYMENT failed; it already ran this image, so there was nothing to undo"
  fi
  if k rollout undo "deployment/$DEPLOYMENT" &&
    kubectl --namespace "$namespace" rollout status "deployment/$DEPLOYMENT" --timeout "${rollout_timeout}s"; then
    fail 12 rollout_failed "rollout of deployment/$DEPLOYMENT failed and was undone; it is back on ${previous_image:-the previous revision}"
  fi
  fail 13 rollout_undo_failed "rollout of deployment/$DEPLOYMENT failed and undoing it failed too; look at the cluster now"
}

# A cancelled workflow or a job that hit its timeout-minutes stops the script midway: on-call
# hears about that too, with how far it got.
interrupted() {
  local signal=$1 code=$2
  fail "$code" interrupted "stopped by SIG$signal while $phase${job:+; migration Job $job}"
}

# Anything that ends the script without going through fail(): still a failed deploy.
unexpected_exit() {
  local code=$?
  if ((code != 0 && !finished)); then
    finished=1
    error "stopped unexpectedly (exit $code) while $phase"
    summary "failed" "stopped unexpectedly (exit $code) while $phase"
    page unexpected_exit "stopped unexpectedly (exit $code) while $phase${job:+; migration Job $job}"
  fi
}

main() {
  trap unexpected_exit EXIT
  trap 'interrupted TERM 143' TERM
  trap 'interrupted INT 130' INT
  check_settings
  log "deploying $image ($version) to $environment, namespace $namespace"
  if ! previous_image=$(k get "deployment/$DEPLOYMENT" \
    --output 'jsonpath={.spec.template.spec.containers[?(@.name=="api")].image}'); then
    fail 14 kubectl_error "kubectl cannot read deployment/$DEPLOYMENT in $namespace; nothing was changed"
  fi
  phase="migrating, before touching the Deployment"
  migrate
  phase="rolling out deployment/$DEPLOYMENT, which may be between versions"
  roll_out
  finished=1
  log "deployed $image to $environment"
  summary "deployed" "Migration Job \`$job\` completed and deployment/$DEPLOYMENT rolled out."
}

main "$@"
