"""JSON-LD contexts: the term maps that turn a client's short names into the IRIs CityOps
stores, and back.

A node never fetches a context from the network (city networks are often air-gapped, and a
fetch per request is a way to make a broker wait on anyone's server). A context is resolved
from what CityOps holds: the files shipped in `contexts/` (the NGSI-LD core context and the
Smart Data Models terms CityOps uses), the remote URLs `contexts/index.yaml` says those files
stand for, CityOps's own `/ngsi-ld/v1/jsonldContexts/...` addresses on any host, and contexts
a client gave inline (an object or a list in a body) or added with `POST /jsonldContexts`, which
are then served under an id of their own. Any other URL is `LdContextNotAvailable`.

This is not a JSON-LD processor: NGSI-LD needs only term -> IRI (names of attributes and
types) with `@vocab` and compact IRIs (`prefix:suffix`), which a dictionary does. Each distinct
context value is resolved once into a `TermMap` and cached, so the hot path (a batch of 40,000
entities with one Link header) costs a dictionary lookup per distinct name.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import yaml  # type: ignore[import-untyped]

from cityops.ngsild import PREFIX
from cityops.ngsild.errors import NgsiError

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
            if rest and ":" not in rest and "/" not in rest and "#" not in rest:
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


# -- shipped and hosted contexts --------------------------------------------------------------


@dataclass
class Hosted:
    id: str
    body: Any  # the "@context" value
    kind: str  # "Hosted" (added by POST) or "ImplicitlyCreated" (given inline in a request)
    url: str  # the remote URL it stands for, for shipped ones


_lock = threading.Lock()
_hosted: OrderedDict[str, Hosted] = OrderedDict()
_files: dict[str, Any] = {}


def _load_file(name: str) -> Any:
    found = _files.get(name)
    if found is None:
        path = HERE / name
        if not path.is_file() or "/" in name or name.startswith("."):
            raise KeyError(name)
        doc = msgspec.json.decode(path.read_bytes())
        found = _files[name] = doc.get("@context", {}) if isinstance(doc, dict) else {}
    return found


def _index() -> dict[str, str]:
    path = HERE / "index.yaml"
    doc = yaml.safe_load(path.read_text()) if path.is_file() else None
    urls = (doc or {}).get("urls") or {}
    return {str(k): str(v) for k, v in urls.items()}


_INDEX: dict[str, str] | None = None


def known_urls() -> dict[str, str]:
    """Remote context URL -> the shipped file that stands for it."""
    global _INDEX
    if _INDEX is None:
        _INDEX = _index()
    return _INDEX


def shipped() -> list[str]:
    """The context files CityOps ships (served under /jsonldContexts/<file>)."""
    names = sorted(p.name for p in HERE.glob("*.jsonld"))
    return [*names, DEFAULT_FILE] if DEFAULT_FILE not in names else names


def _default_context() -> list[Any]:
    # The core context is applied last whatever is listed, so listing the SDM file is enough.
    return [SDM_FILE_URL, CORE_CONTEXT_URL] if (HERE / SDM_FILE).is_file() else [CORE_CONTEXT_URL]


SDM_FILE_URL = f"{CONTEXTS_PATH}/{SDM_FILE}"


def context_document(context_id: str) -> tuple[Any, str] | None:
    """The `@context` body of a context CityOps serves under `context_id`, and its kind
    ("Cached" for shipped files, "Hosted", "ImplicitlyCreated"); None if there is none."""
    if context_id == DEFAULT_FILE:
        return _default_context(), "Cached"
    if context_id in _hosted:
        found = _hosted[context_id]
        return found.body, found.kind
    try:
        return _load_file(context_id), "Cached"
    except (KeyError, OSError, msgspec.DecodeError):
        return None


def hosted() -> list[Hosted]:
    with _lock:
        return list(_hosted.values())


def host(body: Any, *, kind: str = "Hosted", context_id: str | None = None) -> str:
    """Keep a client's context (an object or a list) and return the id it is served under.
    Implicitly created ones are bounded: the oldest goes when the book is full."""
    if not isinstance(body, (dict, list)):
        raise NgsiError("BadRequestData", "@context must be an object or a list to be hosted")
    _check_shape(body)
    cid = context_id or hashlib.sha256(msgspec.json.encode(body)).hexdigest()[:32]
    with _lock:
        if cid in _hosted:
            _hosted.move_to_end(cid)
            return cid
        if len(_hosted) >= MAX_HOSTED:
            implicit = next((k for k, v in _hosted.items() if v.kind == "ImplicitlyCreated"),
                            None)
            if implicit is None:
                raise NgsiError("BadRequestData", f"at most {MAX_HOSTED} contexts are hosted: "
                                "delete one first", 409)
            del _hosted[implicit]
        _hosted[cid] = Hosted(cid, body, kind, "")
    return cid


def unhost(context_id: str) -> bool:
    with _lock:
        return _hosted.pop(context_id, None) is not None


def _check_shape(body: Any) -> None:
    items = body if isinstance(body, list) else [body]
    for item in items:
        if not isinstance(item, (str, dict)):
            raise NgsiError("BadRequestData", "@context items must be URLs or objects")


# -- resolution -------------------------------------------------------------------------------


def _own_id(url: str) -> str | None:
    """The context id when `url` is one of CityOps's own /jsonldContexts/ addresses (on any
    host: every node serves the same ones)."""
    path = urlsplit(url).path if "://" in url else url
    if path.startswith(CONTEXTS_PATH + "/"):
        cid = path[len(CONTEXTS_PATH) + 1:]
        return cid or None
    return None


def _fetch(url: str) -> Any:
    """The `@context` value a URL stands for, from what CityOps holds: never the network."""
    name = known_urls().get(url)
    if name is not None:
        return _load_file(name)
    cid = _own_id(url)
    if cid is not None:
        found = context_document(cid)
        if found is not None:
            return found[0]
    raise NgsiError("LdContextNotAvailable",
                    f"@context {url!r} is not one CityOps holds, and a node fetches no "
                    "context from the network: use the core context, CityOps's own "
                    f"{DEFAULT_CONTEXT_URL}, or send the context inline")


def _collect(value: Any, defs: dict[str, str], state: dict[str, Any], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise NgsiError("BadRequestData", f"@context nests more than {MAX_DEPTH} levels of "
                                          "contexts")
    if value is None:
        return
    if isinstance(value, str):
        _collect(_fetch(value), defs, state, depth + 1)
        return
    if isinstance(value, list):
        for item in value:
            _collect(item, defs, state, depth + 1)
        return
    if not isinstance(value, dict):
        raise NgsiError("BadRequestData", "@context must be a URL, an object or a list of them")
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


def _build(context: Any) -> TermMap:
    defs: dict[str, str] = {}
    state: dict[str, Any] = {"vocab": DEFAULT_VOCAB}
    if context is not None:
        _collect(context, defs, state, 0)
    user_vocab = state["vocab"]
    # The core context last: its terms win over any redefinition; a client's own @vocab
    # stays in force for its own names (the core's is only the fallback).
    _collect(_load_file(CORE_FILE), defs, state, 0)
    state_vocab = user_vocab
    if isinstance(context, str):
        link = context
    elif context is None:
        link = CORE_CONTEXT_URL
    else:
        link = f"{CONTEXTS_PATH}/{host(context, kind='ImplicitlyCreated')}"
    return TermMap(defs, state_vocab, context if context is not None else CORE_CONTEXT_URL,
                   link)


_cache: OrderedDict[Any, TermMap] = OrderedDict()


def resolve(context: str | list[Any] | dict[str, Any] | None) -> TermMap:
    """The term map of a context value (a URL, an object or a list), cached; the core
    context is always in force. Raises NgsiError LdContextNotAvailable for a URL CityOps
    does not hold, BadRequestData for a malformed context."""
    if isinstance(context, list) and len(context) == 1:
        context = context[0]
    if isinstance(context, str) and context in (CORE_CONTEXT_URL, "") or context == []:
        context = None
    key: Any = context if context is None or isinstance(context, str) else \
        msgspec.json.encode(context)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    if isinstance(context, str) and not _ABSOLUTE.match(context) and \
            not context.startswith("/"):
        raise NgsiError("BadRequestData", f"@context {context!r} is not a URL")
    built = _build(context)
    with _lock:
        _cache[key] = built
        while len(_cache) > MAX_CACHED:
            _cache.popitem(last=False)
    return built


def core() -> TermMap:
    return resolve(None)


def forget() -> None:
    """Drop every cached term map (after a hosted context is replaced or deleted)."""
    with _lock:
        _cache.clear()


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


def context_of_request(headers: Mapping[str, str], body_context: Any = NO_CONTEXT) -> TermMap:
    """The term map a request speaks: the Link header's context, or the body's `@context`
    (only in an application/ld+json body, where it is required and a Link header is not
    allowed, as the spec has it). `body_context` is the body's `@context` member, NO_CONTEXT
    (or None) when it has none or there is no body."""
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
        return resolve(body_context)
    if has_body_context:
        raise NgsiError("BadRequestData", "@context: an application/json body may not carry "
                                          "an @context; send it in a Link header, or send the "
                                          "body as application/ld+json")
    return resolve(link_context(link) if link else None)


def served_url(url: str, base: str) -> str:
    """`url` made absolute against `base` (scheme and host) when it is one of CityOps's own
    context paths."""
    if url.startswith("/"):
        return base.rstrip("/") + url
    return url


def link_header(terms: TermMap, base: str) -> str:
    return (f'<{served_url(terms.link, base)}>; rel="{JSONLD_CONTEXT_REL}"; '
            'type="application/ld+json"')
