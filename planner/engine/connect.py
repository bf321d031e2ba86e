"""The clients a run talks to, made from the rules in one place: one Daemon per destination it uses (`local` is
the session daemon, from DOCKER_HOST / the docker context) and the registry client, closed together."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from planner.base.names import LOCAL
from planner.engine.daemon import Daemon
from planner.engine.registry import Registry
from planner.rules.model import Rules


@dataclass
class Engines:
    daemons: dict[str, Daemon] = field(default_factory=dict)
    registry: Registry | None = None
    rules: Rules | None = None

    @property
    def local(self) -> Daemon:
        return self.daemons[LOCAL]

    def ref_at(self, destination: str, ref: str) -> str:
        """A registry ref as `destination` writes it: its own name for the registry (rules:
        `destinations.NAME.registry`) when it reaches the registry under another host:port."""
        configured = self.rules.destinations.get(destination) if self.rules is not None else None
        if self.registry is None or configured is None:
            return ref
        return self.registry.ref_for(ref, configured.registry)

    def close(self) -> None:
        for daemon in self.daemons.values():
            daemon.close()
        if self.registry is not None:
            self.registry.close()

    def __enter__(self) -> Engines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_engines(rules: Rules, destinations: Iterable[str]) -> Engines:
    """Clients for `local` plus the named destinations, and the registry when the rules configure one. Nothing is
    contacted until first use."""
    daemons = {LOCAL: Daemon(LOCAL, None)}
    for name in sorted(set(destinations) - {LOCAL}):
        daemons[name] = Daemon(name, rules.destinations[name].host)
    registry = None
    if rules.registry is not None:
        r = rules.registry
        registry = Registry(r.url, r.namespace, r.insecure, r.username, r.password)
    return Engines(daemons, registry, rules)
