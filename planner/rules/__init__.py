"""The per-repo rules file (`planner.yaml`): models and loading."""
