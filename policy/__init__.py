"""The HyperStudy CrossGuard policy pack: safety rules every `pulumi preview` / `pulumi up` of the stack must pass.

`policies` owns the rules, `kube` how a Kubernetes object is read from what the engine hands a policy,
`runtime_memory` how runtime memory settings are parsed, `stack_plan` the sizing plan the pack checks the node pool
against. Only `__main__` builds the `PolicyPack` (constructing one starts a gRPC server and blocks), so importing
this package never does.
"""
