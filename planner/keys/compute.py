"""Content keys: xxh3-128 over a canonical, versioned encoding of everything that decides a node's output.

Inputs: the context files Docker would send (path, type, kept mode bits, content hash or link target), the
Dockerfile text, build args minus volatile ones, target, platforms, labels, additional contexts (local trees
hashed the same way, remote ones by reference), the rules' extra inputs and environment values, the artifact
output type, and the keys of every upstream node (Merkle). Never absolute paths, mtimes, owners or host names.
Outputs of other nodes (artifact folders, stamp files) inside a context are left out of the walk: the
producer's key stands for them, so a plan never depends on stale generated files.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import xxhash

from planner.base import inputs
from planner.base.deferred import later
from planner.base.errors import InputError
from planner.base.paths import inside
from planner.base.secrets import mask_text, mask_url, secret_values
from planner.build.buildfiles import MAIN
from planner.build.dockerfile import Source, instructions, trigger_reads
from planner.build.dockerignore import PatternMatcher
from planner.build.graph import BuildGraph
from planner.build.sourcepattern import source_meets
from planner.build.stack import Node
from planner.keys import narrow, snapshot
from planner.keys.manifest import KEY_VERSION, Manifest, digest_lines, file_line, value_hash
from planner.keys.patch import Filter, patch
from planner.keys.statcache import StatCache
from planner.keys.tree import Tree
from planner.keys.walk import Entry, Folder, Folders, Witnesses, walk_contexts


def tree_lines(entries: list[Entry], hashes: dict[str, str]) -> list[str]:
    lines = []
    for entry in entries:
        payload = hashes[entry.path] if entry.kind == "f" else entry.target
        lines.append(f"{entry.kind} {entry.mode:o} {entry.path}\0{payload}")
    return lines


def tree_digest(entries: list[Entry], hashes: dict[str, str]) -> str:
    return digest_lines(tree_lines(entries, hashes))


@dataclass(frozen=True)
class _Walk:
    """One context tree to hash for one node: where, with which matcher, leaving out which paths."""

    node: str
    label: str  # "." for the main context, else the additional context's name or "input:<path>"
    root: str
    matcher: PatternMatcher
    skip: tuple[str, ...]
    hash_ignore: PatternMatcher | None


class KeyComputer:
    """Computes every node's key in dependency order, walking each shared tree once."""

    def __init__(
        self,
        graph: BuildGraph,
        cache: StatCache,
        environ: dict[str, str],
        resolve_base: BaseResolver | None = None,
        base_triggers: TriggerReader | None = None,
    ) -> None:
        self.resolve_base = resolve_base
        self.base_triggers = base_triggers
        self._onbuild: dict[str, bool] = {}  # node -> whether its Dockerfile has ONBUILD
        self.graph = graph
        self.cache = cache
        self.environ = environ
        self.generated_by: dict[str, str] = {}  # an output or stamp path -> the node that writes it
        self.generated = self._generated_paths()
        # snapshots to keep once every key is computed (bad input: none), with their signatures not yet known
        # to be older than the racy window
        self.pending: list[
            tuple[tuple[str, int, str], snapshot.Snapshot, list[tuple[int, inputs.Signature]]]
        ] = []

    def _generated_paths(self) -> list[str]:
        self.generated_by = {n.output_dest: n.name for n in self.graph.nodes.values() if n.output_dest}
        self.generated_by.update({s.path: s.source for s in self.graph.stack.stamps.values() if s.path})
        return list(self.generated_by)

    def _skips(self, root: str) -> tuple[str, ...]:
        skips = []
        for path in self.generated:
            if inside(path, root):
                skips.append(os.path.relpath(path, root).replace(os.sep, "/"))
        return tuple(skips)

    def _check_symlinked(self, node: Node, context: str) -> None:
        """A context reached through a symlink that leaves the project is refused: what it holds would change
        without anything in the project changing (a context that simply lies outside is fine)."""
        real = os.path.realpath(context)
        project = os.path.realpath(self.graph.stack.project_dir)
        if real != os.path.normpath(context) and not (real == project or real.startswith(project + os.sep)):
            raise InputError(
                f"{node.name}: build context {context} is a symlink to {real}, outside the project {project}",
                node.location,
                hint="point the context at the real folder",
            )

    def _walks(self, node: Node) -> list[_Walk]:
        walks = []
        for context in [node.build.context, *node.build.additional_contexts.values()]:
            if os.path.isabs(context):
                self._check_symlinked(node, context)
        extra = (
            PatternMatcher.from_lines(node.rules.ignore, f"{node.name}: hash.ignore")
            if node.rules.ignore
            else None
        )
        for label, (root, matcher) in self.graph.files[node.name].contexts.items():
            walks.append(_Walk(node.name, label, root, matcher, self._skips(root), extra))
        project_dir = self.graph.stack.project_dir
        for relative in node.rules.inputs:
            path = os.path.normpath(project_dir / relative)
            if not inputs.exists(path):
                raise InputError(f"{node.name}: hash input {relative} does not exist ({path})", node.location)
            walks.append(
                _Walk(node.name, f"input:{relative}", path, PatternMatcher(), self._skips(path), extra)
            )
        return walks

    def compute(self) -> dict[str, Manifest]:
        plan: dict[str, list[_Walk]] = {name: self._walks(node) for name, node in self.graph.nodes.items()}
        trees = self._hash_trees([w for walks in plan.values() for w in walks])
        manifests: dict[str, Manifest] = {}
        for name in self.graph.order():
            node = self.graph.nodes[name]
            manifest = self._manifest(node, plan[name], trees, manifests)
            manifests[name] = manifest
        later(self.cache.save)
        for key, kept, recent in self.pending:
            later(functools.partial(snapshot.remember, self.cache.store, key, kept, recent))
        self.pending.clear()
        return manifests

    def _hash_trees(self, walks: list[_Walk]) -> snapshot.TreeResults:
        """(node, label) -> its tree (digest and file lines for the manifest); one traversal per distinct root."""
        by_root: dict[str, list[_Walk]] = {}
        for walk in walks:
            if walk.label.startswith("input:") and inputs.is_file(walk.root):
                continue
            by_root.setdefault(walk.root, []).append(walk)
        result: snapshot.TreeResults = {}
        for walk in walks:
            if walk.label.startswith("input:") and inputs.is_file(walk.root):
                digest = StatCache(None).hashes(os.path.dirname(walk.root), [_file_entry(walk.root)])
                content = next(iter(digest.values()))
                result[(walk.node, walk.label)] = Tree.of(
                    [walk.label], [content], digest_lines([f"file {content}"])
                )
        keys = [
            snapshot.snapshot_key(os.path.realpath(r), [_decides(w) for w in g]) for r, g in by_root.items()
        ]
        found = snapshot.reuse_all(self.cache.store, keys)
        for (root, group), key, last in zip(by_root.items(), keys, found, strict=True):
            if isinstance(last, snapshot.Held):
                result.update(last.results)
                continue
            # Nodes that share a root usually share its ignore rules too: each distinct set of rules is
            # walked, hashed and encoded once, and its result shared (one tree, not one per node).
            distinct: dict[tuple[object, ...], list[_Walk]] = {}
            for walk in group:
                distinct.setdefault(_rules_of(walk), []).append(walk)
            firsts = [walks[0] for walks in distinct.values()]
            if isinstance(last, snapshot.Stale):
                filters = [
                    Filter(w[0].matcher, w[0].skip, w[0].hash_ignore, tuple((x.node, x.label) for x in w))
                    for w in distinct.values()
                ]
                patched = patch(os.path.realpath(root), last, filters)
                if patched is not None:
                    kept, recent = patched
                    if inputs.is_recording():
                        inputs.note_tree(kept.paths, kept.packed, [sig for _, sig in recent], kept.members)
                    result.update(kept.results)
                    self.pending.append((key, kept, recent))
                    continue
                records = _settled_records(last.snapshot, os.path.realpath(root))
            else:
                records = last.folders
            # each root's last walk, to list again only the folders that changed
            folders = Folders(records)
            witnesses = Witnesses()
            listings = walk_contexts(
                Path(root), [w.matcher for w in firsts], [w.skip for w in firsts], witnesses, folders
            )
            union: dict[str, Entry] = {}
            for entries in listings:
                for entry in entries:
                    union.setdefault(entry.path, entry)
            hashes = self.cache.hashes(root, union.values())
            for same, listing in zip(distinct.values(), listings, strict=True):
                entries = listing
                if same[0].hash_ignore is not None:
                    entries = [e for e in listing if not same[0].hash_ignore.excluded(e.path)]
                tree = Tree.of(
                    [e.path for e in entries],
                    [
                        file_line(e.kind, e.mode, hashes[e.path] if e.kind == "f" else e.target)
                        for e in entries
                    ],
                )
                for walk in same:
                    result[(walk.node, walk.label)] = tree
            walked = {(w.node, w.label): result[(w.node, w.label)] for w in group}
            packed = witnesses.packed
            kept = snapshot.Snapshot(
                witnesses.paths if packed is not None else [],
                packed or b"",
                witnesses.listed if packed is not None else 0,
                walked,
                folders.current,  # those of racy folders are not walked with: _settled_records
            )
            self.pending.append((key, kept, list(enumerate(witnesses.sigs))))
        return result

    def _main_context(self, node: Node, manifest: Manifest, tree: Tree) -> tuple[str, Mapping[str, str]]:
        """The main context's part of the key: the paths the build reads (`manifest.scope` "narrowed"), or the
        whole tree when they cannot be told exactly (`manifest.scope` "whole", `manifest.scope_reason` why)."""
        why, sources, unchecked = self._reads(node)
        self._check_ordered(node, why, sources)
        if why is None:
            try:
                selection = narrow.select(tree, sources, self.graph.files[node.name].always)
            except narrow.Whole as exc:
                if exc.exact:
                    manifest.scope, manifest.scope_reason = "all", str(exc)
                    manifest.unchecked_bases = list(unchecked)
                    return tree.digest, tree
                why = str(exc)
            else:
                manifest.scope = "narrowed"
                manifest.unchecked_bases = list(unchecked)
                return selection.digest, selection
        manifest.scope, manifest.scope_reason = "whole", why
        return tree.digest, tree

    def _check_ordered(self, node: Node, why: str | None, sources: list[Source]) -> None:
        """Refuse a plan in which the build reads an output or stamp written by a node the graph does not order
        before it. The graph draws those edges from the Dockerfile's reads (graph.reads_generated); only what
        the keys learn besides (a base's ONBUILD triggers, a source through a symlink) can read more."""
        if MAIN not in self.graph.files[node.name].contexts:
            return
        root = self.graph.files[node.name].contexts[MAIN][0]
        before = self.graph.dag.ancestors(node.name)
        for path in self.generated:
            writer = self.generated_by[path]
            if writer == node.name or writer in before:
                continue
            if not inside(path, root):
                continue
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            if why is None and not any(source_meets(s, relative) for s in sources):
                continue
            if not self.graph.files[node.name].sees(path):
                continue
            raise InputError(
                f"{node.name}: its build reads {path} ({why or 'an ONBUILD trigger of its base reads it'}), which "
                f"{writer} writes, but nothing orders {writer} before it",
                node.location,
                hint=f"add `depends_on: [{writer}]` to the rules of {node.name}",
            )

    def _reads(self, node: Node) -> tuple[str | None, list[Source], list[str]]:
        """(why the whole main context counts, or None; the sources the build reads, its bases' ONBUILD
        triggers' included; the external bases whose triggers are unknown here).

        A base whose triggers are unknown (offline, or an image no daemon holds and no earlier run saw) is
        assumed to read nothing: its digest-pinned triggers are remembered once seen (the store), and apply
        reads them before it builds such a node and fails the build, with nothing recorded, when a trigger reads
        the context (apply/steps.py). The next plan then knows them: a narrowed key is never put on an image
        whose build read more."""
        if not node.rules.narrow:
            return "rules: hash.narrow is false", [], []
        reads = self.graph.files[node.name].reads
        if reads is None:
            return "no Dockerfile to analyse", [], []
        if reads.fallback is not None:
            return reads.fallback, [], []
        sources = list(reads.sources)
        unchecked: list[str] = []
        for base in reads.bases:
            if base in node.build.additional_contexts:
                return f"FROM {base}: a named context", [], []
            producer = self.graph.producer(base)
            if producer is not None and producer != node.name:
                if producer not in self.graph.files or self.graph.files[producer].dockerfile_text is None:
                    return f"FROM {base}: made by {producer}, whose Dockerfile is not read here", [], []
                if self._has_onbuild(producer):
                    return f"FROM {base}: the Dockerfile of {producer}, which makes it, has ONBUILD", [], []
                continue
            # an image from outside: its ONBUILD triggers run in this build and may read the context
            triggers = self.base_triggers(base) if self.base_triggers is not None else None
            if triggers is None:
                unchecked.append(base)
                continue
            found = trigger_reads(triggers, base)
            if found.fallback is not None:
                return found.fallback, [], []
            sources += found.sources
        return None, sources, unchecked

    def _has_onbuild(self, name: str) -> bool:
        if name not in self._onbuild:
            text = self.graph.files[name].dockerfile_text if name in self.graph.files else None
            self._onbuild[name] = text is not None and any(i.keyword == "ONBUILD" for i in instructions(text))
        return self._onbuild[name]

    def _base_identity(self, ref: str) -> str:
        return _identity(ref, self.resolve_base)

    def _manifest(
        self,
        node: Node,
        walks: list[_Walk],
        trees: snapshot.TreeResults,
        done: dict[str, Manifest],
    ) -> Manifest:
        build = node.build
        volatile = set(node.rules.volatile_args)
        text = self.graph.files[node.name].dockerfile_text
        inputs.note_variables(node.rules.env)
        manifest = Manifest(
            node=node.name,
            dockerfile=xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogateescape"))
            if text is not None
            else "",
            args={k: value_hash(v) for k, v in build.args.items() if k not in volatile},
            volatile_args=sorted(volatile & set(build.args)),
            target=build.target,
            platforms=list(build.platforms),
            labels={k: value_hash(v) for k, v in build.labels.items()},
            env={
                name: value_hash(self.environ[name]) if name in self.environ else ""
                for name in node.rules.env
            },
            upstream={up: done[up].key for up in self.graph.upstream(node.name)},
            output=node.output_type,
        )
        secrets = secret_values(build.args, self.graph.stack.rules.secret_args)
        manifest.bases, manifest.masked_bases = base_entries(
            self.graph.external.get(node.name, []), self._base_identity, secrets
        )
        context_trees: dict[str, str] = {}
        merged: dict[str, str] = {}
        for walk in walks:
            tree = trees[(walk.node, walk.label)]
            files: Mapping[str, str]
            if walk.label == ".":
                digest, files = self._main_context(node, manifest, tree)
            else:
                digest, files = tree.digest, tree
            if walk.label.startswith("input:"):
                manifest.inputs[walk.label[len("input:") :]] = digest
            else:
                context_trees[walk.label] = digest
            if len(walks) == 1 and walk.label == ".":
                manifest.files = (
                    files  # the shared tree's lines, not a copy per node (read-only from here on)
                )
                continue
            prefix = "" if walk.label == "." else f"{walk.label}:"
            for path, line in files.items():
                merged[f"{prefix}{path}"] = line
            manifest.files = merged
        manifest.trees = dict(context_trees)
        for name, value in build.additional_contexts.items():
            if not os.path.isabs(value):  # remote: docker-image://, git URL, service:NAME (upstream key)
                manifest.contexts[name] = _remote_line(value)
        if not os.path.isabs(build.context):
            manifest.contexts["."] = _remote_line(build.context)
        # may name a base ref (not in the key); apply finds the real ref of an unchecked base by its mask
        manifest.scope_reason = mask_text(manifest.scope_reason, secrets)
        manifest.unchecked_bases = [mask_text(ref, secrets) for ref in manifest.unchecked_bases]
        manifest.key = digest_lines(manifest.lines(context_trees))
        return manifest


def _remote_line(ref: str) -> str:
    """A remote context as the manifest keeps it: the reference, or with credentials in it (a token in a git
    URL) the reference masked and the hash of the whole, so the key still follows it and the cache holds no
    secret."""
    masked = mask_url(ref)
    return ref if masked == ref else f"{masked} {value_hash(ref)}"


def _settled_records(kept: snapshot.Snapshot, real_root: str) -> dict[str, Folder]:
    """A snapshot's folder records without those of folders written within the racy window when it was kept (a
    patch records a folder it listed again however recent): a walk lists those again."""
    racy = {kept.paths[index] for index in kept.racy if index < kept.listed}
    if not racy:
        return kept.records()
    prefix = real_root if real_root.endswith("/") else real_root + "/"
    return {
        relative: record
        for relative, record in kept.records().items()
        if (prefix + relative if relative else real_root) not in racy
    }


def _rules_of(walk: _Walk) -> tuple[object, ...]:
    """What decides a walk's result besides the files: walks with equal rules over one root are one tree."""
    patterns = tuple((p.text, p.exclusion) for p in walk.matcher.patterns)
    ignored = tuple((p.text, p.exclusion) for p in walk.hash_ignore.patterns) if walk.hash_ignore else None
    return (patterns, walk.skip, ignored)


def _decides(walk: _Walk) -> tuple[object, ...]:
    """Everything besides the files that decides a walk's result (a snapshot's key)."""
    patterns = [(p.text, p.exclusion) for p in walk.matcher.patterns]
    ignored = [(p.text, p.exclusion) for p in walk.hash_ignore.patterns] if walk.hash_ignore else None
    return (KEY_VERSION, walk.node, walk.label, patterns, walk.skip, ignored)


BaseResolver = Callable[[str], "str | None"]
# A base image's ONBUILD triggers (Config.OnBuild); None: unknown (offline, no such image here)
TriggerReader = Callable[[str], "list[str] | None"]
PINNED = "pinned"
UNRESOLVED = "unresolved"
MISSING = "missing"


def base_entries(
    refs: list[str], identity: Callable[[str], str], secrets: tuple[str, ...]
) -> tuple[dict[str, str], dict[str, str]]:
    """A node's bases (ref -> identity) and its masked bases (masked ref -> hash of what it stands for).

    A ref holding a secret arg's value (`FROM example.com/${NPM_TOKEN}/base`) is kept with the value masked, so
    no manifest, and nothing shown from one (explain, rebuild reasons, a golden's inputs), holds a secret, even
    after it rotated; the identity is that of the ref as used. The key stays exact: the masked ref's line also
    carries the value hash of the ref(s) behind it. Refs that mask to one string are one entry, their identities
    joined (one identity when they agree: `unresolved` stays `unresolved`)."""
    bases: dict[str, str] = {}
    hidden: dict[str, list[tuple[str, str]]] = {}
    for ref in refs:
        shown = mask_text(ref, secrets)
        if shown == ref:
            bases[ref] = identity(ref)
        else:
            hidden.setdefault(shown, []).append((ref, identity(ref)))
    masked: dict[str, str] = {}
    for shown, pairs in hidden.items():
        pairs.sort()
        bases[shown] = ",".join(sorted({found for _, found in pairs}))
        masked[shown] = value_hash("\n".join(f"{ref} {found}" for ref, found in pairs))
    return bases, masked


def _identity(ref: str, resolve: BaseResolver | None) -> str:
    """A base image's identity: a digest-pinned ref is its own; else the image ID the local daemon resolves
    it to (a re-pulled `debian:12` changes the key); offline, `unresolved`."""
    if "@sha256:" in ref:
        return PINNED
    if resolve is None:
        return UNRESOLVED
    return resolve(ref) or MISSING


def _file_entry(path: str) -> Entry:
    st = os.stat(path)
    return Entry(
        os.path.basename(path),
        "f",
        st.st_mode & 0o7777,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
        st.st_dev,
    )


def compute_keys(
    graph: BuildGraph,
    cache: StatCache,
    environ: dict[str, str],
    resolve_base: BaseResolver | None = None,
    base_triggers: TriggerReader | None = None,
) -> dict[str, Manifest]:
    return KeyComputer(graph, cache, environ, resolve_base, base_triggers).compute()
