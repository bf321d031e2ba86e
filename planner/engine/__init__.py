"""Adapters to the outside world: Docker daemons (Engine API), the registry (HTTP API v2), and builders."""
