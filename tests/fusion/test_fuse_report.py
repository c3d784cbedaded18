"""Fusion reports: Markdown with fused stages as Mermaid subgraphs, every edge's verdict, and the terminal
tables rendered to a fixed-width console."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from streamtune_cli.fusion import plan_fusion
from streamtune_cli.report.fusion_report import boundary_text, fusion_json, fusion_markdown, fusion_renderables
from streamtune_cli.spec import load_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def q5_plan(mode: str = "flink"):  # noqa: ANN201
    return plan_fusion(load_spec(CONFIGS / "nexmark" / "q5.yaml"), mode=mode)


def test_markdown_has_one_subgraph_per_fused_stage_and_every_edge() -> None:
    plan = q5_plan()
    text = fusion_markdown(plan)
    mermaid = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    # Mermaid labels write `<`, `>`, `#`... as entity codes (`#62;`); decode them to compare names.
    titles = [
        re.sub(r"#(\d+);", lambda m: chr(int(m[1])), t.replace("#quot;", '"'))
        for t in re.findall(r'subgraph g\d+\["([^"]+)"\]', mermaid)
    ]
    assert sorted(titles) == sorted(stage.name for stage in plan.chains)
    assert mermaid.count("-->") == len(plan.spec.edges)
    assert mermaid.count("· fused") == sum(b.fused for b in plan.boundaries)
    for boundary in plan.boundaries:
        assert f"{boundary.src} → {boundary.dst}" in text
        assert boundary_text(boundary) in text


def test_boundary_text_says_why() -> None:
    by_edge = {(b.src, b.dst): b for b in q5_plan().boundaries}
    assert boundary_text(by_edge[("bids", "auction_time")]) == "fused (chained): all Flink chaining rules hold"
    assert boundary_text(by_edge[("auction_time", "bids_per_auction")]) == (
        "exchange: hash edge on `auction`; parallelism 2 vs 4"
    )


def test_terminal_tables_render_the_plan() -> None:
    plan = q5_plan("ours")
    console = Console(width=240, file=io.StringIO(), color_system=None)
    for renderable in fusion_renderables(plan):
        console.print(renderable)
    out = console.file.getvalue()
    for expected in (
        "Source: bids -> auction_time",
        "max_per_window -> Sink: sink",
        "hash edge on `auction`",
        "fused (chained)",
        "auction_time → bids_per_auction [hash(auction)]",  # brackets are text, not rich markup
    ):
        assert expected in out


def test_json_report_is_the_plan_dict() -> None:
    plan = q5_plan()
    data = fusion_json(plan)
    assert data == plan.to_dict()
    assert len(data["edges"]) == len(plan.spec.edges)
    assert sum(e["fused"] for e in data["edges"]) == data["fused_edges"]


def _render(plan, width: int) -> str:  # noqa: ANN001
    console = Console(width=width, file=io.StringIO(), color_system=None)
    for renderable in fusion_renderables(plan):
        console.print(renderable)
    return console.file.getvalue()


def test_tables_at_80_columns_never_split_a_name_inside_a_word() -> None:
    for config in ("nexmark/q1.yaml", "nexmark/q5.yaml", "synthetic/linear_chain.yaml", "synthetic/two_source_join.yaml"):
        plan = plan_fusion(load_spec(CONFIGS / config))
        out = _render(plan, 80)
        assert max(len(line) for line in out.splitlines()) <= 80
        words = {w for line in out.splitlines() for w in re.split(r"[\s│┃]+", line) if w}
        names = [s.name for s in plan.stages] + [s.name for s in plan.joint.stages] + [op.id for op in plan.spec.operators]
        for name in names:
            for word in name.split():
                assert word.strip("`,;()") in {w.strip("`,;()") for w in words}, (config, word)


def test_report_shows_the_joint_plan_and_what_it_is_compared_with() -> None:
    plan = plan_fusion(load_spec(CONFIGS / "nexmark" / "q1.yaml"))
    out = _render(plan, 100)
    for expected in (
        "keeps up as written",
        "The spec as written cannot keep up at its peak rate",
        "joint plan: chains and parallelism for 1,000,000 rec/s",
        "Flink chaining, oracle's parallelism",
        "fuses less than Flink's chaining",
    ):
        assert expected in out, expected
    text = fusion_markdown(plan)
    assert "## Joint plan" in text and "## Compared" in text
    data = fusion_json(plan)
    assert data["schema"] == "streamtune.fusion/2"
    assert set(data["compared"]) == {"spec", "given", "flink_given", "oracle", "flink_oracle", "joint"}
    assert data["notes"] == list(plan.notes)
