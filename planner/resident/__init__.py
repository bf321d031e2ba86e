"""A resident planner process: imports done and walk snapshots held in memory, each run forked from it.

A one-shot run after a one-file edit spends as long starting (interpreter, imports, snapshots loaded and decoded)
as it does proving and deciding. `planner server start` keeps one process per cache folder that has done the
starting once; `planner` then hands its command line, directory, environment, umask and standard streams to it
over a Unix socket (client.py, stdlib only), and the server forks a child that runs exactly what the one-shot
process would have run (child.py), in the client's place, and reports its exit code back.

What makes that safe, not merely fast:
- The child is a fresh fork of a process that has only imported modules and read snapshots: no command ever
  runs in the server itself, so no state of one run can reach the next.
- A snapshot held in memory is only a starting point, as one on disk is: every run proves it by lstat of each
  witness (keys/snapshot.py), so an older snapshot costs a larger patch, never a stale key.
- The server runs only for clients of its own user, groups, interpreter and planner code (identity.py): when
  planner's code or its installed packages change, it declines and stops, and the client runs in-process.
"""
