"""The Pulumi program of hyperstudy-infra: the sizing plan of the selected stack, made into GKE and Kubernetes
resources. Everything is validated and derived before the first resource is registered: a bad stack stops with
one line and registers nothing.
"""

import pulumi

from components.address import StaticAddress, StaticAddressArgs
from components.app import TRAEFIK, HyperStudyApp, HyperStudyAppArgs, traefik_ingress_class
from components.cert_manager import CertManager, CertManagerArgs
from components.cluster import GkeCluster, GkeClusterArgs
from components.ingress import PublicRoutes, PublicRoutesArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.node_pool import NodePool, NodePoolArgs
from components.project import ProjectApis, ProjectApisArgs
from components.prometheus_stack import PrometheusStack, PrometheusStackArgs
from components.stack_config import load_program_config, secret_values
from sizing.core.errors import ConfigError
from sizing.plan.build import build_plan
from sizing.plan.pool_name import stack_pool_name

NAME = "hyperstudy"

try:
    config = load_program_config()
    plan = build_plan(config, pulumi.get_stack())
    pool_name = stack_pool_name(config)
    app_args = HyperStudyAppArgs(config=config, plan=plan, node_pool=pool_name)
    app_args.workload_args()
    app_args.schedule_args()
    secrets = secret_values(config)
    monitoring_args = MonitoringArgs.derive(config, plan, secrets)
    stack_args = None
    if config.monitoring.install_stack:
        stack_args = PrometheusStackArgs.derive(config, plan, pool_name, secrets)
    hosts = config.ingress.hosts
    cert_manager_args = None
    if hosts and config.ingress.install_cert_manager:
        cert_manager_args = CertManagerArgs.derive(config, plan, pool_name)
    routes_args = None
    if hosts:
        routes_args = PublicRoutesArgs.derive(
            config,
            ingress_class=traefik_ingress_class(config.kubernetes.namespace),
            traefik_labels=app_args.workload_args()[TRAEFIK].selector,
            node_pool=pool_name,
        )
except ConfigError as err:
    raise pulumi.RunError(f"invalid stack config: {err}") from None

gcp_project = pulumi.Config("gcp").get("project")
# A new project has none of the APIs on: everything in GCP waits for them.
apis = ProjectApis(NAME, ProjectApisArgs(project=gcp_project))
cluster = GkeCluster(
    NAME,
    GkeClusterArgs(
        config=config.cluster,
        maintenance=plan.maintenance,
        project=gcp_project,
        managed_prometheus=config.monitoring.managed_prometheus,
    ),
    opts=pulumi.ResourceOptions(depends_on=[apis]),
)
# Reserved before the load balancer exists, so the DNS records can point at it from the start and outlive it.
address = StaticAddress(
    NAME,
    StaticAddressArgs(
        region=config.cluster.region,
        project=gcp_project,
        description=f"HyperStudy {pulumi.get_stack()}: the ingress of {', '.join(hosts) or 'the stack'}",
        protect=config.cluster.deletion_protection,
    ),
    opts=pulumi.ResourceOptions(depends_on=[apis]),
)
node_pool = NodePool(
    NAME,
    NodePoolArgs(
        cluster_name=cluster.name,
        location=cluster.location,
        regional=config.cluster.regional,
        nodes=plan.nodes,
        pool=config.nodes,
        project=gcp_project,
        pool_name=pool_name,
    ),
    opts=pulumi.ResourceOptions(depends_on=[apis]),
)
# Pods need nodes, private nodes need Cloud NAT to pull their images, and the operator's CRDs must exist before
# rules and monitors: everything in the cluster waits for the pool, the NAT (and the stack, when the program installs
# it) and reaches the cluster through its provider.
ready: list[pulumi.Resource] = [node_pool, *filter(None, [cluster.nat])]
stack = None
if stack_args is not None:
    stack = PrometheusStack(
        NAME, stack_args, opts=pulumi.ResourceOptions(providers=[cluster.provider], depends_on=list(ready))
    )
    ready.append(stack)
cert_manager = None
if cert_manager_args is not None:
    cert_manager = CertManager(
        NAME, cert_manager_args, opts=pulumi.ResourceOptions(providers=[cluster.provider], depends_on=list(ready))
    )
on_cluster = pulumi.ResourceOptions(providers=[cluster.provider], depends_on=ready)
app = HyperStudyApp(NAME, app_args.model_copy(update={"load_balancer_ip": address.ip}), opts=on_cluster)
monitoring = Monitoring(NAME, monitoring_args, opts=on_cluster)
if routes_args is not None:
    # The Issuer is a cert-manager CRD: it waits for the release that installs the CRDs (a cluster that runs its own
    # cert-manager has them already).
    routes = PublicRoutes(
        NAME,
        routes_args,
        opts=pulumi.ResourceOptions(providers=[cluster.provider], depends_on=[*ready, *filter(None, [cert_manager])]),
    )

pulumi.export("profile", plan.profile)
pulumi.export(
    "workloads",
    {
        w.name: {"replicas": w.replicas, "memory_request": w.memory_request, "memory_limit": w.memory_limit}
        for w in plan.pool_workloads.values()
    },
)
pulumi.export(
    "totals",
    {"memory_request_mib": plan.totals.memory_request_mib, "memory_limit_mib": plan.totals.memory_limit_mib},
)
pulumi.export(
    "nodes",
    {
        "machine_type": plan.nodes.machine_type,
        "min": plan.nodes.min,
        "max": plan.nodes.max,
        "lower_bound": plan.nodes.lower_bound,
        "binding": plan.nodes.binding,
    },
)
pulumi.export(
    "cost",
    {
        "monthly_usd": plan.cost.monthly_usd,
        "total_monthly_usd": plan.cost.total_monthly_usd,
        "lines": plan.cost.lines,
        "best_monthly_usd": plan.cost.best_monthly_usd,
        "baseline_monthly_usd": plan.cost.baseline_monthly_usd,
        "savings_pct": plan.cost.savings_pct,
        "observed_baseline_monthly_usd": plan.cost.observed_baseline_monthly_usd,
        "observed_savings_pct": plan.cost.observed_savings_pct,
    },
)
pulumi.export("cluster_name", cluster.name)
# What DNS needs: the hosts, the address, and the records to create (one copy-paste).
pulumi.export("public_ip", address.ip)
pulumi.export("hosts", list(hosts))
pulumi.export("dns_records", address.ip.apply(lambda ip: [f"{host}. 300 IN A {ip}" for host in hosts]))
if stack is not None:
    pulumi.export("grafana_admin_password", pulumi.Output.secret(stack.grafana_password.result))
if cluster.kubeconfig is not None:
    pulumi.export("kubeconfig", cluster.kubeconfig)
