"""From keys and observations to a plan: the pipeline that runs the stages, the memo of whole plans, what the
daemons and registry hold (observe), the one place decisions are made (decide), explain's diff and redaction.
The plan's data model (model.py) is a leaf that engine/ and apply/ may import."""
