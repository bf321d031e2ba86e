"""What a build is and what it reads: the stack's nodes, Dockerfiles, ignore files, the files each build reads, and
the graph between nodes."""
