"""Everything planner prints: plan tables and JSON, graphs (JSON / DOT / Mermaid), apply and warm summaries,
explanations, gc listings, the timing report and `config` documents. Commands compute; this module shows.

rich is imported only by the table renderers, so a JSON answer does not pay for it.
"""

from __future__ import annotations

import json
import sys
from io import StringIO
from typing import TYPE_CHECKING, Any, TextIO

from planner.plan_model import SHARE, GoldenReport, Plan

if TYPE_CHECKING:
    from rich.console import Console

    from planner.apply.run import ApplyResult
    from planner.apply.timing import Report
    from planner.commands.explain import Explanation
    from planner.commands.gc import RepositoryGc
    from planner.commands.warm import WarmResult
    from planner.graph import BuildGraph


def document(data: Any, output_format: str) -> str:
    """A JSON or YAML document (`config`, explain JSON, apply JSON)."""
    if output_format == "yaml":
        from ruamel.yaml import YAML

        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
        buffer = StringIO()
        yaml.dump(data, buffer)
        return buffer.getvalue()
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def plan_json(plan: Plan) -> str:
    """`plan --format json` output (a memo keeps and replays these exact bytes)."""
    return plan.model_dump_json(indent=2) + "\n"


def write_plan(text: str, output_format: str) -> None:
    """Print a plan given as its JSON, in the requested format (table or json)."""
    if output_format == "json":
        sys.stdout.write(text)
        return
    print_plan_table(Plan.model_validate_json(text))


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
    from rich import box
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=120)
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
        transfers = ", ".join(_transfer_text(t.destination, t.mode) for t in node.transfers) or "-"
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
    for report in plan.goldens:
        console.print(golden_line(report), highlight=False)
    console.print(table)
    totals = ", ".join(f"{count} {name}" for name, count in plan.summary.items())
    console.print(f"{len(plan.nodes)} nodes in {len(plan.levels)} levels: {totals}")
    if plan.steps:
        console.print(f"apply runs {len(plan.steps)} step(s):")
        for step in plan.steps:
            what = step.detail or step.ref or step.path or ""
            if step.serves:
                what = f"{what}; also for {', '.join(step.serves)}".lstrip("; ")
            after = f"  (after {', '.join(step.needs)})" if step.needs else ""
            console.print(f"  {step.id}" + (f": {what}" if what else "") + after, highlight=False)
    elif not plan.offline:
        console.print("apply has nothing to do")


def _transfer_text(destination: str, mode: str) -> str:
    """`sandbox: registry` reads as "reaches the sandbox through the registry"; the share push reads as one."""
    if destination == SHARE:
        return "shared by push" if mode == "registry" else f"not shared ({mode})"
    return f"{destination}: {mode}"


def print_report(report: Report, console: Console | None = None) -> None:
    """The per-phase table of a timing log, with totals, wall time and the critical path."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from planner.apply.timing import PHASES

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
    for step, status in sorted(report.unfinished.items()):
        console.print(f"not done: {step} ({status})", highlight=False)
    if report.runs > 1:
        console.print(
            f"the log holds {report.runs} applies; this is {report.shown}"
            + ("" if report.shown == "all runs" else " (--all merges them)"),
            highlight=False,
        )


def apply_summary(result: ApplyResult, stream: TextIO) -> None:
    counts: dict[str, int] = {}
    for step in result.results.values():
        counts[step.status] = counts.get(step.status, 0) + 1
    actions: dict[str, int] = {}
    for node in result.planned.plan.nodes:
        actions[node.action] = actions.get(node.action, 0) + 1
    plan_part = ", ".join(f"{n} {a}" for a, n in sorted(actions.items()))
    step_part = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to do"
    print(f"planner apply: {result.planned.plan.project}: {plan_part}; steps: {step_part}", file=stream)
    for warning in result.warnings:
        print(f"  warning: {warning}", file=stream)
    for failed in result.failed:
        print(f"  {failed.step.id} {failed.status}: {failed.error}", file=stream)
        for line in failed.log[-30:]:
            print(f"    | {line}", file=stream)
        if failed.step.id in result.logs:
            print(f"    full log: {result.logs[failed.step.id]}", file=stream)
    if result.interrupted:
        print("  interrupted: running steps were cancelled; nothing unfinished was recorded", file=stream)


def apply_json(result: ApplyResult) -> str:
    data = {
        "project": result.planned.plan.project,
        "interrupted": result.interrupted,
        "steps": [
            {
                "step": r.step.id,
                "node": r.step.node,
                "phase": r.step.phase,
                "status": r.status,
                "duration": round(r.duration, 3),
                "bytes": r.bytes,
                "error": r.error,
            }
            for r in result.results.values()
        ],
        "warnings": result.warnings,
        "plan": result.planned.plan.model_dump(),
    }
    return json.dumps(data, indent=2) + "\n"


def warm_summary(result: WarmResult, stream: TextIO) -> None:
    failed = [r for r in result.results.values() if r.status not in ("ok", "fell-back")]
    missing = "not filled (registry unreachable)" if result.registry_error else "not in the registry"
    print(f"planner warm: pulled {len(result.pulled) - len(failed)}, already present {len(result.present)}, "
          f"{missing} {len(result.unavailable)}, failed {len(failed)}", file=stream)  # fmt: skip
    if result.registry_error:
        print(f"  the registry could not be asked: {result.registry_error}", file=stream)
    for label in result.unavailable:
        why = "registry unreachable" if result.registry_error else "not in the registry (apply builds it)"
        print(f"  {why}: {label}", file=stream)
    for item in failed:
        print(f"  {item.step.id} failed: {item.error}", file=stream)


def explanation_text(explanation: Explanation) -> str:
    lines = [f"{explanation.node}: key {explanation.key[:12]}, action {explanation.action}", explanation.note]
    lines += [f"  {c.line()}" for c in explanation.changes]
    return "\n".join(lines) + "\n"


def explanation_json(explanation: Explanation) -> str:
    data = {
        "node": explanation.node,
        "key": explanation.key,
        "action": explanation.action,
        "compared_with": explanation.compared_with,
        "note": explanation.note,
        "changes": [{"change": c.kind, "input": c.what, "name": c.name} for c in explanation.changes],
    }
    return json.dumps(data, indent=2) + "\n"


def gc_listing(results: list[RepositoryGc], delete: bool, out: TextIO, err: TextIO) -> None:
    verb = "removed" if delete else "would remove"
    for result in results:
        print(f"{result.repository}: keep {len(result.kept)}, {verb} {len(result.removed)}", file=out)
        for tag in result.removed:
            print(f"  - {tag}", file=out)
        for error in result.errors:
            print(f"  ! {error}", file=err)
    if delete and any(r.removed for r in results):
        print("the registry frees the space when its garbage collector runs: "
              "docker-registry garbage-collect <config.yml>", file=out)  # fmt: skip


def _age(created: str) -> str:
    import datetime

    try:
        then = datetime.datetime.fromisoformat(created)
    except ValueError:
        return "age unknown"
    seconds = max(0, int((datetime.datetime.now(datetime.UTC) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} old"
    return f"{seconds} s old"


def golden_line(report: GoldenReport) -> str:
    """One line per golden in the plan: its version, age and what a session started from it still needs."""
    if report.error is not None:
        return f"golden({report.destination}): {report.path}: {report.error}"
    counts = {
        state: [n.name for n in report.nodes if n.state == state] for state in ("present", "stale", "absent")
    }
    parts = [f"{len(counts['present'])} present"] + [
        f"{len(names)} {state} ({', '.join(names)})"
        for state, names in counts.items()
        if state != "present" and names
    ]
    return (
        f"golden({report.destination}): {report.path} version {report.version}, {_age(report.created)}: "
        + ", ".join(parts)
    )


def golden_status_json(report: GoldenReport) -> str:
    return json.dumps(report.model_dump(mode="json"), indent=2) + "\n"


def golden_status_text(report: GoldenReport) -> str:
    lines = [golden_line(report)]
    for node in report.nodes:
        key = node.key[:12] + (
            f" (golden {node.golden_key[:12]})" if node.state == "stale" and node.golden_key else ""
        )
        lines.append(
            f"  {node.state:7} {node.name}  {key}" + (f"  {node.note}" if node.state != "present" else "")
        )
        lines += [f"      {SYMBOL[c.change]} {c.input} {c.name}" for c in node.changes]
    return "\n".join(lines) + "\n"


SYMBOL = {"added": "+", "removed": "-", "changed": "~"}
