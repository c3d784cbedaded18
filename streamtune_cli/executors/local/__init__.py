"""The local executor: a real multiprocess streaming engine on Arrow batches and polars (docs/executors.md).

Modules: nexmark (the generator), partition (key groups), operators (operator logic on polars frames),
plan (chains, channels and schemas of a deployment), worker (one process: one chain instance) and executor
(the coordinator: deploy, observe, rescale, close). Nothing here is imported by `streamtune --help`.
"""
