"""Reports: traces, fusion plans and benchmarks rendered as JSON, Markdown (Mermaid) and HTML."""
