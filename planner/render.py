"""Text renderings for people and scripts: graph JSON / DOT / Mermaid (plans join later)."""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from planner.apply.timing import PHASES, Report
from planner.graph import BuildGraph
from planner.plan_model import Plan


def graph_data(graph: BuildGraph) -> dict[str, Any]:
    return {
        "nodes": [{"name": n, "kind": graph.nodes[n].kind} for n in graph.order()],
        "edges": [{"from": e.source, "to": e.target, "via": e.via} for e in graph.edges],
        "levels": graph.levels(),
    }


def graph_json(graph: BuildGraph) -> str:
    return json.dumps(graph_data(graph), indent=2) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph_dot(graph: BuildGraph) -> str:
    lines = ["digraph planner {", "  rankdir=LR;", "  node [fontname=Helvetica];"]
    for index, level in enumerate(graph.levels()):
        lines.append(f"  subgraph level_{index} {{ rank=same;")
        for name in level:
            node = graph.nodes[name]
            shape = "box" if node.kind == "image" else "folder"
            # `\n` is DOT's line break inside a label: join the quoted parts so it is not escaped itself
            label = (
                _quote(name)
                if node.image is None or node.image == name
                else _quote(name)[:-1] + "\\n" + _quote(node.image)[1:]
            )
            lines.append(f"    {_quote(name)} [shape={shape}, label={label}];")
        lines.append("  }")
    for edge in graph.edges:
        lines.append(f"  {_quote(edge.source)} -> {_quote(edge.target)} [label={_quote(edge.via)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def graph_mermaid(graph: BuildGraph) -> str:
    ids = {name: f"n{i}" for i, name in enumerate(graph.order())}
    lines = ["flowchart LR"]
    for name, ident in ids.items():
        node = graph.nodes[name]
        text = name.replace('"', "'")
        lines.append(f'  {ident}["{text}"]' if node.kind == "image" else f'  {ident}[/"{text}"/]')
    for edge in graph.edges:
        lines.append(f"  {ids[edge.source]} -->|{edge.via}| {ids[edge.target]}")
    return "\n".join(lines) + "\n"


def print_plan_table(plan: Plan, console: Console | None = None) -> None:
    """One row per node, grouped by level: action, key, needs, destinations, why; totals below."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)
    title = f"planner plan: {plan.project}" + (
        "  (offline: daemons and registry not queried)" if plan.offline else ""
    )
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("node", no_wrap=True)
    table.add_column("produces", overflow="fold")
    table.add_column("key", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("needs", overflow="fold")
    table.add_column("destinations", overflow="fold")
    table.add_column("why", overflow="fold", ratio=1)
    level_of = {name: index for index, level in enumerate(plan.levels) for name in level}
    for node in plan.nodes:
        transfers = ", ".join(f"{t.destination}:{t.mode}" for t in node.transfers) or "-"
        reasons = [r for r in node.reasons if r.code != "offline"]
        why = "; ".join(r.code + (f": {r.detail}" if r.detail else "") for r in reasons[:3]) or "-"
        produces = node.image if node.kind == "image" else "artifact"
        table.add_row(
            str(level_of.get(node.name, "")),
            node.name,
            produces or "-",
            node.key[:12],
            node.action,
            ", ".join(node.needs) or "-",
            transfers,
            why,
        )
    if plan.observed:
        console.print("observed: " + "; ".join(f"{name}: {state}" for name, state in plan.observed.items()))
    console.print(table)
    totals = ", ".join(f"{count} {name}" for name, count in plan.summary.items())
    console.print(f"{len(plan.nodes)} nodes in {len(plan.levels)} levels: {totals}")


def print_report(report: Report, console: Console | None = None) -> None:
    """The per-phase table of a timing log, with totals, wall time and the critical path."""
    console = console or Console()
    phases = [p for p in PHASES if p in report.totals]
    table = Table(title="planner report", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("node")
    for phase in phases:
        table.add_column(phase, justify="right")
    table.add_column("total", justify="right")
    for node in sorted(report.rows):
        row = report.rows[node]
        table.add_row(
            node, *[f"{row[p]:.2f}" if p in row else "-" for p in phases], f"{sum(row.values()):.2f}"
        )
    table.add_row(
        "total",
        *[f"{report.totals[p]:.2f}" for p in phases],
        f"{sum(report.totals.values()):.2f}",
        style="bold",
    )
    console.print(table)
    moved = ", ".join(f"{phase} {size / 1e6:.1f} MB" for phase, size in report.bytes.items() if size)
    console.print(
        f"wall time {report.wall:.2f} s; step time {sum(report.totals.values()):.2f} s"
        + (f"; moved: {moved}" if moved else "")
    )
    console.print(f"critical path {report.critical_seconds:.2f} s: " + " -> ".join(report.critical_path))
