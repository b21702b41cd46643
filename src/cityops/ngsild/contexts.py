"""JSON-LD contexts: the term maps that turn a client's short names into the IRIs CityOps
stores, and back.

A node never fetches a context from the network (city networks are often air-gapped, and a
fetch per request is a way to make a broker wait on anyone's server). A context is resolved
from what the node holds (its `Library`): the files shipped in `contexts/` (the NGSI-LD core
context and the Smart Data Models terms CityOps uses) for the remote URLs
`contexts/index.yaml` says they stand for; the operator's context mirror
(`Settings.ngsild_context_mirror`, a folder of the same shape) for the URLs its producers use;
CityOps's own `/ngsi-ld/v1/jsonldContexts/...` addresses on any host; and contexts a client
gave inline (an object or a list in a body) or added with `POST /jsonldContexts`, which are then
served under an id of their own and kept in the record store. Any other URL is
`LdContextNotAvailable`.

This is not a JSON-LD processor: NGSI-LD needs only term -> IRI (names of attributes and
types) with `@vocab` and compact IRIs (`prefix:suffix`), which a dictionary does. Each distinct
context value is resolved once into a `TermMap` and cached, so the hot path (a batch of 40,000
entities with one Link header) costs a dictionary lookup per distinct name.

Which library: each node has its own (`node.ngsild.contexts`), set as the one in force for its
NGSI-LD routes (ngsild/routes.py) and the tasks its NGSI-LD part starts (service.py), so code
that resolves a context without a node at hand (`resolve`, `context_of_request`) gets the
right node's contexts; code outside any node gets a library of the shipped contexts only, so a
context one node holds never resolves for another.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import yaml  # type: ignore[import-untyped]

from cityops.ngsild import PREFIX
from cityops.ngsild.errors import NgsiError
from cityops.store.record_rows import Record

log = logging.getLogger(__name__)

HERE = Path(__file__).parent / "contexts"
CORE_FILE = "ngsi-ld-core-context-v1.8.jsonld"
CORE_CONTEXT_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
SDM_FILE = "cityops-sdm.jsonld"  # written by the Smart Data Models part (sdm.py)
DEFAULT_FILE = "cityops-default.jsonld"  # core + SDM terms, composed here
CONTEXTS_PATH = PREFIX + "/jsonldContexts"
DEFAULT_CONTEXT_URL = f"{CONTEXTS_PATH}/{DEFAULT_FILE}"
"""CityOps's combined context (core + Smart Data Models terms), as a path every CityOps node
serves and resolves on any host; `served_url` makes it absolute for a header."""

NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
DEFAULT_VOCAB = NGSI_LD + "default-context/"
JSONLD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"

MAX_DEPTH = 8  # contexts that name contexts that name contexts ...
MAX_TERMS = 20_000  # terms one context value may define
MAX_CACHED = 512  # resolved context values kept
MAX_HOSTED = 256  # contexts added by clients (inline or POSTed), oldest implicit ones go first
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


class TermMap:
    """Term <-> IRI for one context value (the core context always in force, last, so its
    terms cannot be redefined, as the spec requires)."""

    __slots__ = ("_compacted", "_expanded", "_reverse", "context", "defs", "link", "vocab")

    def __init__(self, defs: dict[str, str], vocab: str, context: Any, link: str) -> None:
        self.defs = defs
        self.vocab = vocab
        self.context = context  # what an application/ld+json answer puts in "@context"
        self.link = link  # what an application/json answer puts in its Link header
        self._expanded: dict[str, str] = {}
        self._compacted: dict[str, str] = {}
        self._reverse: dict[str, str] | None = None

    def expand(self, term: str) -> str:
        found = self._expanded.get(term)
        if found is not None:
            return found
        iri = _expand(term, self.defs, self.vocab)
        if len(self._expanded) > MAX_TERMS:
            self._expanded.clear()  # a client sending endless new names cannot grow this
        self._expanded[term] = iri
        return iri

    expand_type = expand  # types and attribute names expand alike (@vocab applies to both)

    def compact(self, iri: str) -> str:
        found = self._compacted.get(iri)
        if found is not None:
            return found
        term = self._compact(iri)
        if len(self._compacted) > MAX_TERMS:
            self._compacted.clear()
        self._compacted[iri] = term
        return term

    def _compact(self, iri: str) -> str:
        reverse = self._reverse
        if reverse is None:
            reverse = {}
            for term, target in self.defs.items():
                if target.startswith("@"):
                    continue
                best = reverse.get(target)
                if best is None or (len(term), term) < (len(best), best):
                    reverse[target] = term
            self._reverse = reverse
        found = reverse.get(iri)
        if found is not None:
            return found
        if iri.startswith(self.vocab):
            rest = iri[len(self.vocab):]
            # As JSON-LD compacts: a vocabulary-relative name only where it is not a term of
            # the context naming something else (it would read back as that other IRI).
            if rest and ":" not in rest and "/" not in rest and "#" not in rest and \
                    self.defs.get(rest, iri) == iri:
                return rest
        best_term, best_base = None, ""
        for target, name in reverse.items():
            if (target.endswith(("/", "#")) and len(iri) > len(target) > len(best_base)
                    and iri.startswith(target)):
                best_term, best_base = name, target
        if best_term is not None:
            return f"{best_term}:{iri[len(best_base):]}"
        return iri


def _expand(term: str, defs: Mapping[str, str], vocab: str) -> str:
    found = defs.get(term)
    if found is not None:
        return found
    if ":" in term:
        prefix, _, suffix = term.partition(":")
        if suffix.startswith("//"):
            return term
        base = defs.get(prefix)
        if base is not None and not base.startswith("@"):
            return base + suffix
        return term  # urn:..., an absolute IRI of another scheme
    return vocab + term


# -- what a node holds: shipped files, an operator's mirror, contexts clients gave ------------


@dataclass
class Held:
    """A context a node serves under `/jsonldContexts/<id>` (the spec's ContextInfo)."""

    id: str  # its localId
    body: Any  # the "@context" value
    kind: str  # "Cached", "Hosted" (added by POST) or "ImplicitlyCreated" (given inline)
    url: str  # a Cached one's remote URL; "" for those CityOps serves at its own address
    created: float  # epoch seconds


def _read_context(path: Path, what: str) -> Any:
    """The `@context` value of a context file; ValueError naming `what` when it is not one."""
    try:
        doc = msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError) as error:
        raise ValueError(f"{what}: not a readable JSON file ({error})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("@context"), (dict, list, str)):
        raise ValueError(f"{what}: a JSON-LD context file is an object with an @context")
    return doc["@context"]


def _read_index(folder: Path, what: str) -> dict[str, str]:
    """`urls:` of a folder's index.yaml: remote URL -> a file of the folder."""
    path = folder / "index.yaml"
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{what}: {path} is not a readable YAML file ({error})") from None
    urls = doc.get("urls") if isinstance(doc, dict) else None
    if not isinstance(urls, dict):
        raise ValueError(f"{what}: {path} needs `urls:`, a map of remote URL to file name")
    out: dict[str, str] = {}
    for url, name in urls.items():
        if not isinstance(url, str) or not _ABSOLUTE.match(url):
            raise ValueError(f"{what}: {path}: {url!r} is not an absolute URL")
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or \
                name.startswith("."):
            raise ValueError(f"{what}: {path}: {url}: {name!r} is not a file name of the "
                             "folder")
        out[url] = name
    return out


_shipped_lock = threading.Lock()
_shipped_bodies: dict[str, Any] = {}
_INDEX: dict[str, str] | None = None


def _load_file(name: str) -> Any:
    """A shipped file's `@context` (read once per process: they never change)."""
    found = _shipped_bodies.get(name)
    if found is None:
        path = HERE / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise KeyError(name)
        try:
            found = _read_context(path, name)
        except ValueError:
            raise KeyError(name) from None
        with _shipped_lock:
            _shipped_bodies[name] = found
    return found


def known_urls() -> dict[str, str]:
    """Remote context URL -> the shipped file that stands for it."""
    global _INDEX
    if _INDEX is None:
        _INDEX = _read_index(HERE, "the shipped contexts")
    return _INDEX


def shipped() -> list[str]:
    """The context files CityOps ships (served under /jsonldContexts/<file>)."""
    names = sorted(p.name for p in HERE.glob("*.jsonld"))
    return [*names, DEFAULT_FILE] if DEFAULT_FILE not in names else names


SDM_FILE_URL = f"{CONTEXTS_PATH}/{SDM_FILE}"


def _default_context() -> list[Any]:
    # The core context is applied last whatever is listed, so listing the SDM file is enough.
    return [SDM_FILE_URL, CORE_CONTEXT_URL] if (HERE / SDM_FILE).is_file() else [CORE_CONTEXT_URL]


class Mirror:
    """An operator's context mirror: a folder with an `index.yaml` (`urls:`, remote URL ->
    file, the shipped index's format) and the files. Read whole at start, so a broken mirror
    stops the node with the file at fault named instead of failing requests later; `reread`
    takes a file again (DELETE /jsonldContexts/<url>?reload=true, after the operator
    changed it)."""

    def __init__(self, folder: Path) -> None:
        what = f"the NGSI-LD context mirror {folder}"
        if not folder.is_dir():
            raise ValueError(f"{what}: not a folder")
        self.folder = folder
        self.urls = _read_index(folder, what)
        clash = sorted(set(self.urls.values()) & set(shipped()))
        if clash:
            raise ValueError(f"{what}: {clash[0]} is the name of a context CityOps ships; "
                             "rename the mirror's file")
        self.bodies = {name: self._read(name) for name in sorted(set(self.urls.values()))}

    def _read(self, name: str) -> Any:
        path = self.folder / name
        if not path.is_file():
            raise ValueError(f"the NGSI-LD context mirror {self.folder}: index.yaml names "
                             f"{name}, which is not in the folder")
        return _read_context(path, f"the NGSI-LD context mirror's {path}")

    def reread(self, name: str) -> Any:
        self.bodies[name] = self._read(name)
        return self.bodies[name]


KIND = "ngsild_context"  # the record kind hosted and implicitly created contexts are kept as
VERSION_KEY = "ngsild.contexts.version"
FOLLOW_S = 2.0


class Library:
    """The contexts one node holds and the term maps resolved from them.

    Per node, not per process: an operator's mirror and the contexts its clients added are that
    node's (tests, and a process serving two nodes, must not see one node's contexts in the
    other). Remote URLs resolve from the mirror first, then from the files CityOps ships; a
    copy taken is listed as Cached (the spec's contexts a broker downloaded) until it is
    deleted, and taken again at its next use. Hosted and implicitly created contexts are kept in
    the node's record store once `attach`ed (kind `ngsild_context`), so they outlive a restart
    and every web node of a cluster serves the same ones."""

    def __init__(self, mirror: Path | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.mirror = Mirror(mirror) if mirror is not None else None
        self.clock = clock
        self._lock = threading.RLock()
        self._held: OrderedDict[str, Held] = OrderedDict()  # hosted and implicit, by id
        self._cached: dict[str, Held] = {}  # remote URL -> the copy taken
        self._terms: OrderedDict[Any, TermMap] = OrderedDict()
        # id -> to save (None: to delete), kept only once a store is attached (a library with
        # none, the process's own, would otherwise remember every context it ever saw).
        self._unsaved: dict[str, Held | None] = {}
        self._store: Any = None
        self._seen_version: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._take(CORE_CONTEXT_URL)  # always in force, so always held

    # -- remote URLs --------------------------------------------------------------------------

    def origin(self, url: str) -> tuple[str, Any] | None:
        """(file name, `@context`) that a remote URL stands for, mirror first."""
        if self.mirror is not None:
            name = self.mirror.urls.get(url)
            if name is not None:
                return name, self.mirror.bodies[name]
        name = known_urls().get(url)
        if name is not None:
            return name, _load_file(name)
        return None

    def _take(self, url: str) -> Held | None:
        with self._lock:
            found = self._cached.get(url)
            if found is not None:
                return found
            origin = self.origin(url)
            if origin is None:
                return None
            found = self._cached[url] = Held(origin[0], origin[1], "Cached", url, self.clock())
            return found

    def fetch(self, url: str) -> Any:
        """The `@context` value a URL stands for, from what the node holds: never the
        network."""
        found = self._take(url)
        if found is not None:
            return found.body
        cid = own_id(url)
        if cid is not None:
            document = self.document(cid)
            if document is not None:
                return document.body
        raise NgsiError("LdContextNotAvailable",
                        f"@context {url!r} is not one CityOps holds, and a node fetches no "
                        "context from the network: use the core context, CityOps's own "
                        f"{DEFAULT_CONTEXT_URL}, send the context inline, or have the "
                        "operator add it to the node's context mirror")

    # -- what is served -----------------------------------------------------------------------

    def document(self, context_id: str) -> Held | None:
        """What `/jsonldContexts/<context_id>` serves: a hosted or implicit context by its id,
        a Cached copy by its remote URL or localId, a shipped file by its name."""
        if context_id == DEFAULT_FILE:
            return Held(DEFAULT_FILE, _default_context(), "Cached", "", 0.0)
        with self._lock:
            found = self._held.get(context_id) or self._cached.get(context_id)
            if found is None:
                found = next((h for h in self._cached.values() if h.id == context_id), None)
        if found is not None:
            return found
        try:
            return Held(context_id, _load_file(context_id), "Cached", "", 0.0)
        except KeyError:
            return None

    def listing(self) -> list[Held]:
        """Every context served: the shipped files, the Cached copies, hosted, implicit."""
        with self._lock:
            rows = [Held(name, None, "Cached", "", 0.0) for name in shipped()]
            rows += sorted(self._cached.values(), key=lambda h: h.url)
            rows += list(self._held.values())
        return rows

    def host(self, body: Any, *, kind: str = "Hosted") -> str:
        """Keep a client's context (an object or a list) and return the id it is served
        under (the same context, the same id). Implicitly created ones are bounded: the oldest
        goes when the book is full; hosted ones are refused then."""
        if not isinstance(body, (dict, list)):
            raise NgsiError("BadRequestData", "@context must be an object or a list to be "
                                              "hosted")
        _check_shape(body)
        cid = hashlib.sha256(msgspec.json.encode(body)).hexdigest()[:32]
        with self._lock:
            found = self._held.get(cid)
            if found is not None:
                if kind == "Hosted" and found.kind != "Hosted":
                    found.kind = "Hosted"  # a client added what it had given inline
                    self._changed(cid, found)
                self._held.move_to_end(cid)
                return cid
            if len(self._held) >= MAX_HOSTED:
                implicit = next((k for k, v in self._held.items()
                                 if v.kind == "ImplicitlyCreated"), None)
                if implicit is None:
                    raise NgsiError("BadRequestData", f"at most {MAX_HOSTED} contexts are "
                                                      "hosted: delete one first", 409)
                del self._held[implicit]
                self._changed(implicit, None)
            held = self._held[cid] = Held(cid, body, kind, "", self.clock())
            self._changed(cid, held)
        if self._wake is not None:
            self._wake.set()
        return cid

    def _changed(self, cid: str, held: Held | None) -> None:
        if self._store is not None:
            self._unsaved[cid] = held

    async def add(self, body: Any) -> str:
        """Host a client's context (POST /jsonldContexts), saved before this returns."""
        cid = self.host(body, kind="Hosted")
        if self._store is not None:
            await self.save()
        return cid

    async def remove(self, context_id: str, *, reload: bool = False) -> None:
        """`drop`, saved before this returns."""
        self.drop(context_id, reload=reload)
        if self._store is not None:
            await self.save()

    def check(self, context: Any) -> None:
        """Refuse a context that is malformed or names a context the node does not hold (as
        resolving it would, without keeping it)."""
        _check_shape(context)
        self._collect(context, {}, {"vocab": DEFAULT_VOCAB}, 0)

    def drop(self, context_id: str, *, reload: bool = False) -> str:
        """Delete a hosted or implicit context, or a Cached copy (taken again at its next
        use; with `reload`, taken again now, from the mirror's file as it is now). Returns the
        kind dropped; NgsiError when there is nothing of that id or it may not go."""
        with self._lock:
            held = self._held.get(context_id)
            cached = [u for u, h in self._cached.items()
                      if context_id in (u, h.id)] if held is None else []
        if held is not None:
            if reload:
                raise NgsiError("BadRequestData", f"reload: {context_id} is "
                                                  f"{held.kind}: only a Cached context is "
                                                  "reloaded")
            with self._lock:
                self._held.pop(context_id, None)
                self._changed(context_id, None)
        elif cached:
            if CORE_CONTEXT_URL in cached and not reload:
                raise NgsiError("BadRequestData", "contextId: the core context is always in "
                                                  "force and cannot be deleted")
            with self._lock:
                for url in cached:
                    name = self._cached.pop(url).id
                    if reload:
                        if self.mirror is not None and url in self.mirror.urls:
                            try:
                                self.mirror.reread(name)
                            except ValueError as error:
                                raise NgsiError("LdContextNotAvailable", str(error),
                                                504) from None
                        self._take(url)
        elif context_id in shipped():
            raise NgsiError("BadRequestData", f"contextId: {context_id} is shipped with "
                                              "CityOps and cannot be deleted")
        else:
            if reload:
                raise NgsiError("BadRequestData", f"reload: there is no Cached context "
                                                  f"{context_id[:100]!r} to reload")
            raise NgsiError("ResourceNotFound", f"contextId: no context {context_id[:100]!r}")
        self.forget()
        if self._wake is not None:
            self._wake.set()
        return held.kind if held is not None else "Cached"

    # -- term maps ----------------------------------------------------------------------------

    def resolve(self, context: str | list[Any] | dict[str, Any] | None) -> TermMap:
        """The term map of a context value (a URL, an object or a list), cached; the core
        context is always in force. Raises NgsiError LdContextNotAvailable for a URL the node
        does not hold, BadRequestData for a malformed context."""
        if isinstance(context, list) and len(context) == 1:
            context = context[0]
        if isinstance(context, str) and context in (CORE_CONTEXT_URL, "") or context == []:
            context = None
        key: Any = context if context is None or isinstance(context, str) else \
            msgspec.json.encode(context)
        with self._lock:
            found = self._terms.get(key)
            if found is not None:
                self._terms.move_to_end(key)
                return found
        if isinstance(context, str) and not _ABSOLUTE.match(context) and \
                not context.startswith("/"):
            raise NgsiError("BadRequestData", f"@context {context!r} is not a URL")
        built = self._build(context)
        with self._lock:
            self._terms[key] = built
            while len(self._terms) > MAX_CACHED:
                self._terms.popitem(last=False)
        return built

    def _build(self, context: Any) -> TermMap:
        defs: dict[str, str] = {}
        state: dict[str, Any] = {"vocab": DEFAULT_VOCAB}
        if context is not None:
            self._collect(context, defs, state, 0)
        user_vocab = state["vocab"]
        # The core context last: its terms win over any redefinition; a client's own @vocab
        # stays in force for its own names (the core's is only the fallback).
        self._collect(_load_file(CORE_FILE), defs, state, 0)
        if isinstance(context, str):
            link = context
        elif context is None:
            link = CORE_CONTEXT_URL
        else:
            link = f"{CONTEXTS_PATH}/{self.host(context, kind='ImplicitlyCreated')}"
        return TermMap(defs, user_vocab, context if context is not None else CORE_CONTEXT_URL,
                       link)

    def _collect(self, value: Any, defs: dict[str, str], state: dict[str, Any],
                 depth: int) -> None:
        if depth > MAX_DEPTH:
            raise NgsiError("BadRequestData", f"@context nests more than {MAX_DEPTH} levels "
                                              "of contexts")
        if value is None:
            return
        if isinstance(value, str):
            self._collect(self.fetch(value), defs, state, depth + 1)
            return
        if isinstance(value, list):
            for item in value:
                self._collect(item, defs, state, depth + 1)
            return
        if not isinstance(value, dict):
            raise NgsiError("BadRequestData", "@context must be a URL, an object or a list of "
                                              "them")
        _define(value, defs, state)

    def forget(self) -> None:
        """Drop every term map (after a context is replaced or deleted)."""
        with self._lock:
            self._terms.clear()

    # -- the record store ---------------------------------------------------------------------

    async def attach(self, store: Any) -> None:
        """Keep hosted and implicit contexts in `store` from now on, read the ones kept there,
        and follow other nodes' changes."""
        self._store = store
        with self._lock:  # what was hosted before the store was there is kept too
            self._unsaved = {cid: held for cid, held in self._held.items()}
        self._seen_version = await store.get_meta(VERSION_KEY)
        await self.reload()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._follow(), name="ngsild-contexts")

    async def detach(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._store is not None:
            with contextlib.suppress(Exception):
                await self.save()
        self._wake = None

    async def reload(self) -> None:
        """The hosted and implicit contexts as stored (those not yet saved kept as they are)."""
        fresh: dict[str, Held] = {}
        cursor: tuple[float, str] | None = None
        while True:
            page = await self._store.find_records(KIND, limit=500, before=cursor)
            for rec in page:
                try:
                    doc = msgspec.json.decode(rec.doc)
                    fresh[rec.id] = Held(rec.id, doc["body"], doc["kind"], "", rec.created)
                except (msgspec.DecodeError, KeyError, TypeError):
                    log.error("hosted context %s is not readable; left out", rec.id)
            if len(page) < 500:
                break
            cursor = (page[-1].created, page[-1].id)
        with self._lock:
            for cid in self._unsaved:
                mine = self._held.get(cid)
                if mine is None:
                    fresh.pop(cid, None)
                else:
                    fresh[cid] = mine
            ordered = sorted(fresh.values(), key=lambda h: (h.created, h.id))
            changed = [h.id for h in ordered] != list(self._held) or any(
                self._held[h.id].body != h.body or self._held[h.id].kind != h.kind
                for h in ordered)
            self._held = OrderedDict((h.id, h) for h in ordered)
        if changed:
            self.forget()

    async def save(self) -> None:
        """Write what changed here since the last save, then tell the other nodes."""
        with self._lock:
            pending, self._unsaved = self._unsaved, {}
        if not pending:
            return
        store = self._store
        try:
            for cid, held in pending.items():
                if held is None:
                    await store.delete_record(KIND, cid)
                    continue
                doc = msgspec.json.encode({"kind": held.kind, "body": held.body})
                current = await store.get_record(KIND, cid)
                rec = Record(kind=KIND, id=cid, doc=doc, status=held.kind,
                             created=held.created, updated=self.clock(),
                             version=current.version if current is not None else 0)
                await store.put_record(
                    rec, expect_version=current.version if current is not None else None)
        except Exception:
            with self._lock:  # tried again on the next turn; newer changes win
                self._unsaved = {**pending, **self._unsaved}
            raise
        token = f"{time.time_ns():x}-{secrets.token_hex(4)}"
        current_version = await store.get_meta(VERSION_KEY)
        await store.set_meta(VERSION_KEY, token)
        if current_version == self._seen_version:
            self._seen_version = token

    async def follow_once(self) -> None:
        if self._unsaved:
            await self.save()
        version = await self._store.get_meta(VERSION_KEY)
        if version != self._seen_version:
            await self.reload()
            self._seen_version = version

    async def _follow(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FOLLOW_S)
            self._wake.clear()
            try:
                await self.follow_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("keeping the hosted JSON-LD contexts in the store failed; "
                              "trying again")


def _define(value: dict[str, Any], defs: dict[str, str], state: dict[str, Any]) -> None:
    """The term definitions of one context object into `defs`."""
    vocab = value.get("@vocab")
    if isinstance(vocab, str):
        state["vocab"] = _expand(vocab, defs, state["vocab"])
    for term, definition in value.items():
        if term.startswith("@"):
            continue
        if len(defs) >= MAX_TERMS:
            raise NgsiError("BadRequestData", f"@context defines more than {MAX_TERMS} terms")
        target = definition.get("@id") if isinstance(definition, dict) else definition
        if definition is None or target is None and not isinstance(definition, dict):
            defs.pop(term, None)
            continue
        if target is None:
            target = term
        if not isinstance(target, str):
            raise NgsiError("BadRequestData", f"@context term {term!r}: its @id is not a string")
        defs[term] = target if target.startswith("@") else _expand(target, defs, state["vocab"])


def _check_shape(body: Any) -> None:
    items = body if isinstance(body, list) else [body]
    for item in items:
        if not isinstance(item, (str, dict)):
            raise NgsiError("BadRequestData", "@context items must be URLs or objects")


def own_id(url: str) -> str | None:
    """The context id when `url` is one of CityOps's own /jsonldContexts/ addresses (on any
    host: every node serves the same ones)."""
    path = urlsplit(url).path if "://" in url else url
    if path.startswith(CONTEXTS_PATH + "/"):
        cid = path[len(CONTEXTS_PATH) + 1:]
        return cid or None
    return None


# -- the library in force ---------------------------------------------------------------------

_current: ContextVar[Library | None] = ContextVar("cityops_ngsild_contexts", default=None)
_default: Library | None = None


def current() -> Library:
    """The library of the node whose work is running (its NGSI-LD routes and the tasks it
    started set it: `using`), else the process's own, which holds only the shipped contexts
    and what code outside a node hosted (tools, the benchmark's client side)."""
    found = _current.get()
    if found is not None:
        return found
    global _default
    if _default is None:
        _default = Library()
    return _default


@contextlib.contextmanager
def using(library: Library) -> Iterator[None]:
    token = _current.set(library)
    try:
        yield
    finally:
        _current.reset(token)


def resolve(context: str | list[Any] | dict[str, Any] | None) -> TermMap:
    """`Library.resolve` of the library in force."""
    return current().resolve(context)


def core() -> TermMap:
    return current().resolve(None)


def context_document(context_id: str) -> tuple[Any, str] | None:
    """The `@context` body served under `context_id` and its kind, or None."""
    found = current().document(context_id)
    return None if found is None else (found.body, found.kind)


def hosted() -> list[Held]:
    return [h for h in current().listing() if h.kind != "Cached"]


def host(body: Any, *, kind: str = "Hosted") -> str:
    return current().host(body, kind=kind)


def forget() -> None:
    current().forget()


# -- the HTTP edge ----------------------------------------------------------------------------

_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")


def link_context(header: str) -> str | None:
    """The context URL of a Link header (the one with the JSON-LD context rel), or None."""
    found: list[str] = []
    for match in _LINK.finditer(header):
        params = match.group(2) or ""
        rel = re.search(r'rel\s*=\s*"?([^";]+)"?', params)
        if rel is not None and rel.group(1).strip() == JSONLD_CONTEXT_REL:
            found.append(match.group(1).strip())
    if len(found) > 1:
        raise NgsiError("BadRequestData", "the Link header names more than one JSON-LD context")
    if not found:
        if header.strip():
            raise NgsiError("BadRequestData",
                            f'the Link header has no rel="{JSONLD_CONTEXT_REL}" context link')
        return None
    url = found[0]
    if not url:
        raise NgsiError("BadRequestData", "the Link header's context URL is empty")
    return url


def media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


NO_CONTEXT: Any = object()  # the body had no "@context" member


def context_of_request(headers: Mapping[str, str], body_context: Any = NO_CONTEXT, *,
                       library: Library | None = None) -> TermMap:
    """The term map a request speaks: the Link header's context, or the body's `@context`
    (only in an application/ld+json body, where it is required and a Link header is not
    allowed, as the spec has it). `body_context` is the body's `@context` member, NO_CONTEXT
    (or None) when it has none or there is no body. Resolved by `library` (default: the one
    in force)."""
    lib = library or current()
    has_body_context = body_context is not NO_CONTEXT and body_context is not None
    link = headers.get("link")
    media = media_type(headers)
    if media == "application/ld+json":
        if link:
            raise NgsiError("BadRequestData", "an application/ld+json request carries its "
                                              "@context in the body, not in a Link header")
        if not has_body_context:
            raise NgsiError("BadRequestData", "@context: an application/ld+json body must "
                                              "carry its @context")
        return lib.resolve(body_context)
    if has_body_context:
        raise NgsiError("BadRequestData", "@context: an application/json body may not carry "
                                          "an @context; send it in a Link header, or send the "
                                          "body as application/ld+json")
    return lib.resolve(link_context(link) if link else None)


def served_url(url: str, base: str) -> str:
    """`url` made absolute against `base` (scheme and host) when it is one of CityOps's own
    context paths."""
    if url.startswith("/"):
        return base.rstrip("/") + url
    return url


def link_header(terms: TermMap, base: str) -> str:
    return (f'<{served_url(terms.link, base)}>; rel="{JSONLD_CONTEXT_REL}"; '
            'type="application/ld+json"')
