# Development recipes; `just --list` shows them.
venv := ".venv"
py := venv / "bin/python"

setup:
    python3 -m venv {{venv}}
    {{venv}}/bin/pip install -q -e '.[dev]' --config-settings editable_mode=compat

test *args:
    {{py}} -m pytest -q -p no:cacheprovider {{args}}

lint:
    {{venv}}/bin/ruff check .
    {{venv}}/bin/ruff format --check .
    {{venv}}/bin/mypy

fmt:
    {{venv}}/bin/ruff check --fix .
    {{venv}}/bin/ruff format .

bench:
    {{py}} bench/load_compose.py
    {{py}} bench/plan_offline.py
    {{py}} bench/apply_helix.py
    {{py}} bench/transfer.py
    {{py}} bench/golden.py

# our users' cold-start table: today's path vs planner apply, six scenarios (docs/benchmarks.md); ~1.5 GB desktop
bench-coldstart *args:
    {{py}} bench/coldstart.py --out docs {{args}}

schemas:
    {{venv}}/bin/planner schema rules > schemas/rules.schema.json
    {{venv}}/bin/planner schema plan > schemas/plan.schema.json
