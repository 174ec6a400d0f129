"""The stack config: one module per top-level key (`capacity`, `workloads`, `runtime`, `nodes`, `catalogue`,
`cost`, `cluster`, `kubernetes`/`images`, `monitoring`, `ingress`), `StackConfig` over them (`stack`), and the one
loader (`loader`) the CLI, the program and the tests read a stack through. Imports `sizing.core` and `sizing.facts`.

`python -m sizing` reads these keys from `Pulumi.<stack>.yaml`; the Pulumi program reads the same keys through
`pulumi.Config` and hands the raw values to `loader.parse_stack_config`. Either way one model, one set of rules.
"""
