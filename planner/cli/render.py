"""Everything planner prints: plan tables and JSON, graphs (JSON / DOT / Mermaid), apply and warm summaries,
explanations, gc listings, the timing report and `config` documents. Commands compute; this module shows.

rich is imported only by the table renderers, so a JSON answer does not pay for it.
"""

from __future__ import annotations

import json
import sys
from io import StringIO
from typing import TYPE_CHECKING, Any, TextIO

from planner.plan.model import SAME_IMAGE, SHARE, GoldenReport, Plan, Transfer

if TYPE_CHECKING:
    from rich.console import Console

    from planner.apply.run import ApplyResult
    from planner.apply.timing import Report
    from planner.build.graph import BuildGraph
    from planner.commands.explain import Explanation
    from planner.commands.gc import RepositoryGc
    from planner.commands.warm import WarmResult


def literal_console(**options: Any) -> Console:
    """A console that prints every string as it is: node names, paths and reasons come from users, and rich's
    markup and emoji codes would change them (`export:art:` printed as `export` and an emoji)."""
    from rich.console import Console

    return Console(markup=False, emoji=False, highlight=False, **options)


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


GRAPHVIZ_MISSING = "graph --format svg needs Graphviz's `dot` on PATH: install it (apt-get install graphviz) or use --format dot"


def graph_svg(graph: BuildGraph) -> str:
    """The DOT graph drawn by Graphviz (`dot -Tsvg`): a self-contained SVG with a `<g class="node">` per node.
    Graphviz missing is a runtime failure (exit 1) whose one line says how to get it."""
    import shutil
    import subprocess

    from planner.base.errors import RuntimeFailure

    binary = shutil.which("dot")
    if binary is None:
        raise RuntimeFailure(GRAPHVIZ_MISSING)
    try:
        done = subprocess.run(
            [binary, "-Tsvg"], input=graph_dot(graph), capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise RuntimeFailure(f"{GRAPHVIZ_MISSING} ({binary}: {exc.strerror})") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[0]
        raise RuntimeFailure(f"Graphviz `dot -Tsvg` failed: {reason}")
    return done.stdout


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
    from rich.table import Table

    if console is None:
        console = literal_console()
        if not console.is_terminal:
            console = literal_console(width=120)
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
        transfers = ", ".join(_transfer_text(t) for t in node.transfers) or "-"
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
    console.print(f"{len(plan.nodes)} nodes in {len(plan.levels)} levels: {_totals(plan.summary)}")
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


def _totals(summary: dict[str, int]) -> str:
    """A plan's counts as apply runs them: nodes that share an earlier node's image are said to be built once."""
    return ", ".join(
        f"{count} on another node's image (made once)" if name == SAME_IMAGE else f"{count} {name}"
        for name, count in summary.items()
    )


def _transfer_text(transfer: Transfer) -> str:
    """`sandbox: registry` reads as "reaches the sandbox through the registry"; the share push reads as one;
    a delivery whose content is known says what moves: `sandbox: tarball (2 layers, 21.0 MB)`."""
    if transfer.destination == SHARE:
        return "shared by push" if transfer.mode == "registry" else f"not shared ({transfer.mode})"
    text = f"{transfer.destination}: {transfer.mode}"
    if transfer.layers is not None:
        size = f", {transfer.size / 1e6:.1f} MB" if transfer.size is not None else ""
        text += f" ({transfer.layers} layer{'s' if transfer.layers != 1 else ''}{size})"
    return text


def print_report(report: Report, console: Console | None = None) -> None:
    """The per-phase table of a timing log, with totals, wall time and the critical path."""
    from rich import box
    from rich.table import Table

    from planner.apply.timing import PHASES

    console = console or literal_console()
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


def report_json(report: Report) -> str:
    return json.dumps(report.summary(), indent=2) + "\n"


def report_trace(report: Report) -> str:
    """Chrome trace-event JSON of the steps the report covers (chrome://tracing, ui.perfetto.dev)."""
    from planner.apply.timing import trace_events

    return json.dumps(trace_events(report.steps)) + "\n"


# Timeline colours per phase (Tableau 10), and the order of the legend.
PHASE_COLOURS = {
    "build": "#4e79a7", "export": "#f28e2b", "push": "#e15759", "pull": "#76b7b2",
    "transfer": "#59a14f", "load": "#edc948", "tag": "#b07aa1", "stamp": "#9c755f",
}  # fmt: skip
OTHER_COLOUR = "#bab0ac"


def _xml(text: object) -> str:
    from xml.sax.saxutils import escape

    return escape(str(text), {'"': "&quot;", "'": "&apos;"})


def _tick_step(span: float) -> float:
    """1, 2 or 5 times a power of ten, giving 4 to 10 ticks over the span."""
    import math

    if span <= 0:
        return 1.0
    power: float = 10.0 ** math.floor(math.log10(span / 5))
    return next(m * power for m in (1, 2, 5, 10) if span / (m * power) <= 10)


def _size(size: int) -> str:
    return f"{size} bytes" + (f" ({size / 1e6:.1f} MB)" if size >= 100_000 else "")


def report_svg(report: Report) -> str:
    """A self-contained SVG timeline: one row per node (steps of a node that overlap get lanes), one bar per step
    placed by start and duration and coloured by phase, the critical path outlined thick, a `<title>` per bar."""
    from planner.apply.timing import timed

    ran = sorted(timed(report.steps), key=lambda r: (r["start"], r["step"]))
    origin = ran[0]["start"] if ran else 0.0
    span = max((r["start"] + r["duration"] - origin for r in ran), default=0.0)
    critical = set(report.critical_path)
    label_w, plot_w, lane_h, bar_h, top = 180, 880, 22, 16, 40
    scale = plot_w / span if span > 0 else 0.0
    # Rows in order of each node's first start; a node's overlapping steps (several deliveries) take lanes.
    rows: dict[str, list[list[dict[str, Any]]]] = {}
    for item in ran:
        lanes = rows.setdefault(str(item["node"]), [])
        free = next(
            (lane for lane in lanes if lane[-1]["start"] + lane[-1]["duration"] <= item["start"]), None
        )
        if free is None:
            lanes.append(free := [])
        free.append(item)
    phases = [p for p in PHASE_COLOURS if any(r["phase"] == p for r in ran)]
    phases += sorted({str(r["phase"]) for r in ran} - set(PHASE_COLOURS))
    plot_h = sum(len(lanes) for lanes in rows.values()) * lane_h + 8 * len(rows)
    axis_y = top + plot_h
    width = label_w + plot_w + 30
    note_lines = _wrapped(
        [f"critical path {report.critical_seconds:.2f} s:", *report.critical_path], (width - 20) // 7
    )
    height = axis_y + 82 + 18 * (len(note_lines) + len(report.unfinished))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        "<title>planner report: step timeline</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">planner report — {_xml(report.shown)}, '
        f"wall time {report.wall:.2f} s</text>",
    ]
    # Time axis with ticks (grid lines first: under the bars).
    out.append(f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" stroke="#333333"/>')
    step = _tick_step(span)
    tick = 0.0
    while span > 0 and tick <= span + 1e-9:
        x = label_w + tick * scale
        out.append(
            f'<line x1="{x:.2f}" y1="{top}" x2="{x:.2f}" y2="{axis_y + 5}" stroke="#cccccc" stroke-width="0.5"/>'
            f'<text class="tick" x="{x:.2f}" y="{axis_y + 18}" text-anchor="middle">{tick:g} s</text>'
        )
        tick = round(tick + step, 9)
    y = top
    for node, lanes in rows.items():
        row_h = len(lanes) * lane_h
        out.append(
            f'<g class="row" data-node="{_xml(node)}">'
            f'<rect x="0" y="{y}" width="{width}" height="{row_h + 8}" fill="#f5f5f5" fill-opacity="0.6"/>'
            f'<text class="label" x="{label_w - 8}" y="{y + row_h / 2 + 8}" text-anchor="end">{_xml(node)}</text>'
        )
        for index, lane in enumerate(lanes):
            for item in lane:
                x = label_w + (item["start"] - origin) * scale
                w = max(1.0, item["duration"] * scale)
                on_path = item["step"] in critical
                colour = PHASE_COLOURS.get(str(item["phase"]), OTHER_COLOUR)
                outline = (
                    ' stroke="#000000" stroke-width="3"'
                    if on_path
                    else ' stroke="#ffffff" stroke-width="0.5"'
                )
                dashed = (
                    "" if item.get("status", "ok") == "ok" else ' stroke-dasharray="4 2" fill-opacity="0.5"'
                )
                tip = (
                    f"{item['step']} — {item['phase']}, {item.get('status', 'ok')}, {item['duration']:.3f} s, "
                    f"{_size(int(item.get('bytes') or 0))}" + (", on the critical path" if on_path else "")
                    + (f"; {item['error']}" if item.get("error") else "")
                )  # fmt: skip
                out.append(
                    f'<rect class="bar{" critical" if on_path else ""}" data-step="{_xml(item["step"])}" '
                    f'x="{x:.2f}" y="{y + 4 + index * lane_h}" width="{w:.2f}" height="{bar_h}" rx="2" '
                    f'fill="{colour}"{outline}{dashed}><title>{_xml(tip)}</title></rect>'
                )
        out.append("</g>")
        y += row_h + 8
    # Legend and notes.
    legend_y = axis_y + 40
    x = label_w
    for phase in phases:
        out.append(
            f'<rect class="legend" x="{x}" y="{legend_y - 10}" width="12" height="12" '
            f'fill="{PHASE_COLOURS.get(phase, OTHER_COLOUR)}"/><text x="{x + 16}" y="{legend_y}">{_xml(phase)}</text>'
        )
        x += 24 + 8 * len(phase)
    out.append(
        f'<rect x="{x + 10}" y="{legend_y - 10}" width="12" height="12" fill="none" stroke="#000000" '
        f'stroke-width="3"/><text x="{x + 28}" y="{legend_y}">critical path</text>'
    )
    for n, line in enumerate(note_lines):
        out.append(f'<text class="note" x="10" y="{legend_y + 26 + 18 * n}">{_xml(line)}</text>')
    below = legend_y + 26 + 18 * len(note_lines)
    for n, (step_id, status) in enumerate(sorted(report.unfinished.items())):
        out.append(
            f'<text class="note" x="10" y="{below + 18 * n}">not done: {_xml(step_id)} ({_xml(status)})</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _wrapped(words: list[str], width: int) -> list[str]:
    """`head step → step → ...` broken into lines of at most `width` characters (a long critical path would
    run off the picture); a line break comes after an arrow."""
    lines = [words[0]]
    for index, word in enumerate(words[1:]):
        piece = ("" if index == 0 else "→ ") + word
        if len(lines[-1]) + 1 + len(piece) > width and lines[-1] != words[0]:
            lines.append(piece)
        else:
            lines[-1] += " " + piece
    return lines


def apply_summary(result: ApplyResult, stream: TextIO) -> None:
    counts: dict[str, int] = {}
    for step in result.results.values():
        counts[step.status] = counts.get(step.status, 0) + 1
    summary = result.planned.plan.summary
    plan_part = _totals({name: n for name, n in summary.items() if not name.startswith("transfer-")})
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
    if explanation.context:
        lines.append(explanation.context)
    lines += [f"  {c.line()}" for c in explanation.changes]
    return "\n".join(lines) + "\n"


def explanation_json(explanation: Explanation) -> str:
    data = {
        "node": explanation.node,
        "key": explanation.key,
        "action": explanation.action,
        "compared_with": explanation.compared_with,
        "note": explanation.note,
        "context": explanation.context,
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
