"""The backend's scheduled scaling on Kubernetes: `BackendSchedule`, one CronJob per `ScaleAction` of the sizing
plan's schedule (`sizing/plan/schedule.py`), and the one grant those jobs need.

Each CronJob fires at its action's cron schedule in its action's time zone (`spec.timeZone`, GA since Kubernetes
1.27: the controller's own time-zone database handles DST) and runs one pod that makes one API call with its own
service account token: a merge patch of the StatefulSet's `scale` subresource to the action's replicas. A one-off
window's action carries its year: its cron fields recur every year, so the pod does nothing in any other year. An
action's per-date exceptions (`ScaleAction.replicas_on`, keyed by the run's UTC date) reach the pod as REPLICAS_ON:
a run on such a date sets that date's count instead.

The scaler's Role grants `patch` on `statefulsets/scale` of the one StatefulSet, and nothing else: no `get`, no
`list`, no other object. The namespace's NetworkPolicies restrict ingress only (components/app.py: default-deny
*ingress*, each Workload's policy `Ingress` only), so the pods reach the API server without an egress rule, and
nothing may connect to them.

While a stack has scheduled actions, Pulumi leaves the StatefulSet's `spec.replicas` to these jobs
(`WorkloadArgs.replicas_managed_externally`): a `pulumi up` between a scale-up and its scale-down would otherwise
take the window's replicas away. A changed `workloads.<name>.replicas` then reaches the cluster at the next
scale-down (or at once, by `kubectl scale`).

A job's merge patch makes its field manager, `curl` (the API server names a manager that gives none by its
User-Agent), with subresource `scale`, the owner of `spec.replicas` whenever it changes the value. Without scheduled
actions (no schedule, every window over, or a rollback whose larger pods hold the windows at the configured
replicas) the CronJobs go and Pulumi manages the replicas again: its server-side apply then sends the plan's
replicas, and mid-window, against the scaler's larger live count, the API server refuses it with a field conflict
naming `curl` (`pulumi up --refresh` only refreshes Pulumi's state; the conflict is the API server's). So the
StatefulSet is registered with `pulumi.com/patchForce` whenever no scaler owns it (`WorkloadArgs.force_apply`): the
apply takes the field back and the StatefulSet scales down to the plan's replicas, deleting the window's pods
(highest ordinals first) with the experiments on them. README.md ("Rollback during a window") says what the user
sees and how to avoid it.
"""

from __future__ import annotations

import re
from datetime import date

import pulumi
from pulumi_kubernetes.batch.v1 import CronJob, CronJobSpecArgs, JobSpecArgs, JobTemplateSpecArgs
from pulumi_kubernetes.core.v1 import (
    CapabilitiesArgs,
    ContainerArgs,
    EnvVarArgs,
    PodSecurityContextArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ResourceRequirementsArgs,
    SeccompProfileArgs,
    SecurityContextArgs,
    ServiceAccount,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs
from pulumi_kubernetes.rbac.v1 import PolicyRuleArgs, Role, RoleBinding, RoleRefArgs, SubjectArgs
from pydantic import Field, model_validator

from components.workload import (
    COMPONENT,
    INSTANCE,
    LABEL_VALUE,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    NAME,
    PART_OF,
    PART_OF_VALUE,
    VERSION,
    image_version,
)
from sizing.config.schedule import CRONJOB_NAME
from sizing.core.model import Model
from sizing.plan.pool_name import GKE_NODE_POOL_LABEL, POOL_NAME_PATTERN
from sizing.plan.scaler_jobs import (
    ACTIVE_DEADLINE_SECONDS,
    BACKOFF_LIMIT,
    FAILED_JOBS_HISTORY_LIMIT,
    STARTING_DEADLINE_SECONDS,
    SUCCESSFUL_JOBS_HISTORY_LIMIT,
    TTL_SECONDS_AFTER_FINISHED,
)
from sizing.plan.types import ScaleAction

SCHEDULE_TYPE = "hyperstudy:schedule:BackendSchedule"

# The scaler's image, pinned by digest: the same for every stack, so a constant rather than a stack config entry
# (`images` holds the workloads' images, and its keys must be workloads). Alpine with busybox sh; its own user is
# curl_user (100) in curl_group (101).
SCALER_IMAGE = (
    "docker.io/curlimages/curl:8.11.1@sha256:c1fe1679c34d9784c1b0d1e5f62ac0a79fca01fb6377cdd33e90473c6f9f9a69"
)
# Like every process of the app (sizing/facts/workloads.py), UID 10001, a user no node has, in the image's own group.
# curl reads nothing curl_user owns: the token and CA files are readable by the pod's user whatever its UID.
SCALER_USER = 10001
SCALER_GROUP = 101
SCALER_COMPONENT = "scheduler"
CONTAINER = "scale"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

# The scaler pod's only program. The data comes in the environment (REPLICAS, NAMESPACE, STATEFULSET, ONLY_YEAR
# for a one-off window, and REPLICAS_ON for an action with per-date exceptions); API_SERVER, TOKEN_FILE and CA_CERT
# default to the in-cluster API server and the mounted service account files (overridable only so a test can run the
# script against a local fake server). One request: a merge patch of the scale subresource, retried on any error; the
# token reaches curl on stdin as a config line, never in its arguments, where any process listing would show it.
#
# REPLICAS_ON is space-separated `YYYY-MM-DD=N` pairs: a cron schedule cannot leave out a date, so a weekly action
# whose run on one date meets another window (a one-off, or a zone whose DST differs) runs that day too, and must set
# another count. The model keys those exceptions by the run's UTC date (`ScaleAction.replicas_at`), so the script
# compares the pairs with `date -u +%F`, read once (the year guard takes its year from the same reading). A pod that
# starts late or is retried past 00:00 UTC reads the next date, as it would the next year: an exception is exact for
# a run scheduled more than the starting and active deadlines below (10 minutes) before UTC midnight. N is checked
# like REPLICAS, before any request; `set -f` keeps a pair from ever expanding as a file pattern.
SCALE_SCRIPT = """\
set -euf
today="$(date -u +%F)"
year="${today%%-*}"
if [ -n "${ONLY_YEAR:-}" ] && [ "$year" != "$ONLY_YEAR" ]; then
  echo "nothing to do: this action belongs to $ONLY_YEAR, it is $year"
  exit 0
fi
case "$REPLICAS" in
  '' | *[!0-9]*) echo "REPLICAS=$REPLICAS is not a replica count" >&2; exit 2 ;;
esac
replicas="$REPLICAS"
for pair in ${REPLICAS_ON:-}; do
  case "$pair" in
    "$today="*)
      replicas="${pair#*=}"
      case "$replicas" in
        '' | *[!0-9]*) echo "REPLICAS_ON has $pair: $replicas is not a replica count" >&2; exit 2 ;;
      esac
      echo "$today is an exception: $replicas replicas instead of $REPLICAS"
      ;;
  esac
done
url="${API_SERVER:-https://kubernetes.default.svc}/apis/apps/v1/namespaces/$NAMESPACE/statefulsets/$STATEFULSET/scale"
token="$(cat "${TOKEN_FILE:-/var/run/secrets/kubernetes.io/serviceaccount/token}")"
echo "scaling statefulset $NAMESPACE/$STATEFULSET to $replicas replicas"
printf 'header = "Authorization: Bearer %s"\\n' "$token" | curl -fsS --retry 5 --retry-all-errors --max-time 30 \\
  --config - \\
  --cacert "${CA_CERT:-/var/run/secrets/kubernetes.io/serviceaccount/ca.crt}" \\
  -X PATCH -H 'Content-Type: application/merge-patch+json' \\
  --data-raw "{\\"spec\\":{\\"replicas\\":$replicas}}" \\
  "$url"
echo
"""

# Not in the node plan: these pods run for seconds a few times a week, never resident, and fit any node's slack.
SCALER_RESOURCES = {"requests": {"memory": "16Mi", "cpu": "10m"}, "limits": {"memory": "32Mi"}}


def _is_date(day: str) -> bool:
    try:
        date.fromisoformat(day)
    except ValueError:
        return False
    return True


class BackendScheduleArgs(Model):
    """The scheduled scaling of one StatefulSet: the plan's actions, and where the scaler's objects live."""

    workload: str = Field(
        pattern=_DNS_LABEL, description="the StatefulSet the actions scale (SchedulePlan.workload, the backend)"
    )
    actions: tuple[ScaleAction, ...] = Field(
        min_length=1, description="the plan's scaling actions (SchedulePlan.actions): one CronJob each"
    )
    namespace: str = Field(pattern=_DNS_LABEL, description="namespace of the StatefulSet and of every object here")
    instance: str = Field(pattern=LABEL_VALUE, description="app.kubernetes.io/instance: which installation (the stack)")
    node_pool: str | None = Field(
        None,
        pattern=POOL_NAME_PATTERN,
        description="GKE node pool the job pods run on, like the workloads' (None: any node of the cluster)",
    )

    @model_validator(mode="after")
    def _one_cronjob_per_action(self) -> BackendScheduleArgs:
        names = [self.cronjob_name(action) for action in self.actions]
        if len(set(names)) != len(names):
            raise ValueError(f"two actions share a name: {', '.join(sorted(names))}")
        for name in names:
            if not re.fullmatch(CRONJOB_NAME, name):
                raise ValueError(f"CronJob name {name!r} is no DNS label of at most 52 characters")
        return self

    @model_validator(mode="after")
    def _exceptions_the_script_reads(self) -> BackendScheduleArgs:
        # The script matches an exception's date to `date -u +%F` and takes its count as digits only: any other key
        # would never apply, and any other count would fail the run.
        for action in self.actions:
            for day, replicas in action.replicas_on.items():
                if not (re.fullmatch(_ISO_DATE, day) and _is_date(day)) or replicas < 0:
                    raise ValueError(
                        f"{action.name}: replicas_on {day!r}={replicas}: wants a YYYY-MM-DD date and a count >= 0"
                    )
        return self

    def cronjob_name(self, action: ScaleAction) -> str:
        """`<workload>-<action>`, e.g. backend-teaching-lab-up: the CronJob's name, and its Jobs' prefix."""
        return f"{self.workload}-{action.name}"

    @property
    def account(self) -> str:
        """The scaler's ServiceAccount, Role and RoleBinding: `<workload>-scaler`."""
        return f"{self.workload}-scaler"

    @property
    def labels(self) -> dict[str, str]:
        """The recommended labels of every object and pod of the scaler."""
        labels = {
            NAME: self.account,
            INSTANCE: self.instance,
            COMPONENT: SCALER_COMPONENT,
            PART_OF: PART_OF_VALUE,
            MANAGED_BY: MANAGED_BY_VALUE,
        }
        version = image_version(SCALER_IMAGE)
        if version is not None:
            labels[VERSION] = version
        return labels

    def env(self, action: ScaleAction) -> dict[str, str]:
        """The script's data for one action; ONLY_YEAR only for a one-off window's, REPLICAS_ON only for an action
        with per-date exceptions (`YYYY-MM-DD=N` pairs by date, space-separated)."""
        env = {"REPLICAS": str(action.replicas), "NAMESPACE": self.namespace, "STATEFULSET": self.workload}
        if action.year is not None:
            env["ONLY_YEAR"] = str(action.year)
        if action.replicas_on:
            env["REPLICAS_ON"] = " ".join(f"{day}={n}" for day, n in sorted(action.replicas_on.items()))
        return env


class BackendSchedule(pulumi.ComponentResource):
    """The scaler's ServiceAccount, its Role (patch on the one StatefulSet's scale) and RoleBinding, and one CronJob
    per scaling action."""

    service_account: ServiceAccount
    role: Role
    role_binding: RoleBinding
    cron_jobs: dict[str, CronJob]

    def __init__(self, name: str, args: BackendScheduleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(SCHEDULE_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def metadata(object_name: str) -> ObjectMetaArgs:
            return ObjectMetaArgs(name=object_name, namespace=args.namespace, labels=args.labels)

        self.service_account = ServiceAccount(
            args.account,
            metadata=metadata(args.account),
            # The one pod of the app besides Traefik's that calls the API server: its token is its whole purpose.
            automount_service_account_token=True,
            opts=child,
        )
        self.role = Role(
            args.account,
            metadata=metadata(args.account),
            # Exactly the one call the script makes: no get (the merge patch needs none), no list, no other object.
            rules=[
                PolicyRuleArgs(
                    api_groups=["apps"],
                    resources=["statefulsets/scale"],
                    verbs=["patch"],
                    resource_names=[args.workload],
                )
            ],
            opts=child,
        )
        self.role_binding = RoleBinding(
            args.account,
            metadata=metadata(args.account),
            role_ref=RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=self.role.metadata.apply(lambda m: m.name)
            ),
            subjects=[SubjectArgs(kind="ServiceAccount", name=args.account, namespace=args.namespace)],
            opts=child,
        )

        self.cron_jobs = {}
        for action in args.actions:
            cronjob = args.cronjob_name(action)
            self.cron_jobs[action.name] = CronJob(
                cronjob,
                metadata=metadata(cronjob),
                spec=CronJobSpecArgs(
                    schedule=action.schedule,
                    time_zone=action.time_zone,
                    # One run at a time; an up and a down of two windows in the same minute are two CronJobs, and
                    # each sets what every window provisioned then needs, whichever runs first.
                    concurrency_policy="Forbid",
                    starting_deadline_seconds=STARTING_DEADLINE_SECONDS,
                    successful_jobs_history_limit=SUCCESSFUL_JOBS_HISTORY_LIMIT,
                    failed_jobs_history_limit=FAILED_JOBS_HISTORY_LIMIT,
                    job_template=JobTemplateSpecArgs(
                        metadata=ObjectMetaArgs(labels=args.labels),
                        spec=JobSpecArgs(
                            backoff_limit=BACKOFF_LIMIT,
                            active_deadline_seconds=ACTIVE_DEADLINE_SECONDS,
                            ttl_seconds_after_finished=TTL_SECONDS_AFTER_FINISHED,
                            template=self._pod_template(args, action),
                        ),
                    ),
                ),
                opts=child,
            )

        self.register_outputs(
            {
                "workload": args.workload,
                "role": self.role.metadata.apply(lambda m: m.name),
                "cron_jobs": {
                    args.cronjob_name(a): {
                        "schedule": a.schedule,
                        "time_zone": a.time_zone,
                        "replicas": a.replicas,
                        **({"replicas_on": dict(sorted(a.replicas_on.items()))} if a.replicas_on else {}),
                    }
                    for a in args.actions
                },
            }
        )

    @staticmethod
    def _pod_template(args: BackendScheduleArgs, action: ScaleAction) -> PodTemplateSpecArgs:
        container = ContainerArgs(
            name=CONTAINER,
            image=SCALER_IMAGE,
            command=["/bin/sh", "-c", SCALE_SCRIPT],
            env=[EnvVarArgs(name=key, value=value) for key, value in args.env(action).items()],
            resources=ResourceRequirementsArgs(
                requests=SCALER_RESOURCES["requests"], limits=SCALER_RESOURCES["limits"]
            ),
            security_context=SecurityContextArgs(
                allow_privilege_escalation=False,
                capabilities=CapabilitiesArgs(drop=["ALL"]),
                read_only_root_filesystem=True,
            ),
        )
        return PodTemplateSpecArgs(
            metadata=ObjectMetaArgs(labels=args.labels),
            spec=PodSpecArgs(
                service_account_name=args.account,
                automount_service_account_token=True,
                enable_service_links=False,
                restart_policy="Never",
                # The namespace enforces the restricted Pod Security level (components/app.py).
                security_context=PodSecurityContextArgs(
                    run_as_non_root=True,
                    run_as_user=SCALER_USER,
                    run_as_group=SCALER_GROUP,
                    seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
                ),
                containers=[container],
                node_selector={GKE_NODE_POOL_LABEL: args.node_pool} if args.node_pool else None,
            ),
        )
