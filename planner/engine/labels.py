"""Labels planner puts on every image it builds: the content key is the truth about what an image holds."""

LABEL_KEY = "io.planner.key"
LABEL_NODE = "io.planner.node"
LABEL_PROJECT = "io.planner.project"
