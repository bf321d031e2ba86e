"""Commands on top of the pipeline: each takes the plan (or its parts) and does one job."""
