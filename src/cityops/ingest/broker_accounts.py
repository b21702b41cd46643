"""Device credentials on the MQTT broker, kept by CityOps through Mosquitto's dynamic-security
plugin (its `$CONTROL/dynamic-security/v1` topic API, spoken with the plugin's admin client).

Each device key gets one broker client and one role of its own:

- the client's username is the key id and its password the key's secret, so a device holds
  one credential for HTTP and MQTT alike; CityOps keeps only the secret's hash, which is why
  the client is made when the key is made (`cityops keys create`, `rotate`), while the secret
  is still at hand, and can never be made again later;
- the role `cityops-key-<key id>` may publish to `<prefix>/<device id>` for each device in
  the key's scope (an area key: the devices in the area; a department key: the devices the
  department owns), or to `<prefix>/+` for a key of the whole city.

Why one topic per device rather than a topic per key (`<prefix>/<key id>/+`): the topic the
devices already speak stays as it is, a topic always names the device that owns it, whoever
publishes, and the intake, which cannot see who published a message, needs no key lookup on
the hot path: it only has to refuse a reading whose device is not its topic's (mqtt.py). The
price is an ACL list as long as the key's devices, refreshed when devices are registered or
moved; `BrokerSync` does that on each node with the dynsec admin configured, and also removes
the clients of keys that were revoked or expired (the broker knows no expiry; deleting a
client disconnects it at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import aiomqtt
import msgspec

from cityops.background import Background
from cityops.domain.access import Role, Scope
from cityops.domain.city import Device
from cityops.ingest.mqtt import parse_mqtt_url
from cityops.store.base import ApiKeyRecord, Store

log = logging.getLogger(__name__)

CONTROL = "$CONTROL/dynamic-security/v1"
RESPONSE = f"{CONTROL}/response"
ROLE_PREFIX = "cityops-key-"
INTAKE_ROLE = "cityops-intake"
SEND = "publishClientSend"
_KEY_ID = re.compile(r"k_[0-9a-f]{12}")
_NOT_FOUND = ("Client not found", "Role not found")


class BrokerError(RuntimeError):
    """The broker refused a command, did not answer, or could not be reached."""


def role_name(key_id: str) -> str:
    return ROLE_PREFIX + key_id


def topic_prefix(topic_filter: str) -> str:
    """`cityops/readings` from the intake's filter (`$share/g/cityops/readings/+` too)."""
    topic = topic_filter
    if topic.startswith("$share/"):
        topic = topic.split("/", 2)[2]
    return topic.removesuffix("/+").removesuffix("/#").strip("/")


def device_topics(record: ApiKeyRecord, devices: Iterable[Device], prefix: str) -> list[str]:
    """The topics a device key may publish to; sorted, so two lists compare as sets do."""
    scope = Scope.parse(record.scope)
    if scope.area is None and scope.department is None:
        return [f"{prefix}/+"]
    if scope.area is not None:
        area = scope.area
        mine = (d for d in devices if d.areas is not None and d.areas.within(area))
    else:
        mine = (d for d in devices if d.owner == scope.department)
    # An id with MQTT's separators or wildcards names no single topic level: such a device
    # can only be written to over HTTP.
    return sorted({f"{prefix}/{d.id}" for d in mine if not set(d.id) & {"/", "+", "#"}})


def _acl(topic: str, allow: bool = True) -> dict:
    return {"acltype": SEND, "topic": topic, "allow": allow, "priority": 0}


@dataclass
class SyncResult:
    removed: list[str] = field(default_factory=list)  # key ids whose client went
    updated: list[str] = field(default_factory=list)  # key ids whose topics changed
    missing: list[str] = field(default_factory=list)  # active device keys with no client
    next_expiry: float | None = None  # the soonest expiry of an active device key


class BrokerAccounts:
    """A connection to the broker as the dynsec admin. `async with BrokerAccounts(...) as b:`"""

    def __init__(self, admin_url: str, prefix: str, *, timeout: float = 10.0) -> None:
        self.admin_url = admin_url
        self.address = parse_mqtt_url(admin_url)
        if not self.address.username:
            raise ValueError(f"the MQTT admin URL {_shown(admin_url)} names no user: use "
                             "mqtt://ADMIN:PASSWORD@HOST:PORT")
        self.prefix = prefix.strip("/")
        self.timeout = timeout
        self._client: aiomqtt.Client | None = None
        self._messages = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)

    async def __aenter__(self) -> BrokerAccounts:
        a = self.address
        client = aiomqtt.Client(a.host, a.port, username=a.username, password=a.password,
                                protocol=aiomqtt.ProtocolVersion.V5, timeout=self.timeout,
                                tls_params=aiomqtt.TLSParameters() if a.tls else None)
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise BrokerError(f"cannot reach the MQTT broker {_shown(self.admin_url)} as its "
                              f"dynamic-security admin: {exc}") from None
        try:
            await client.subscribe(RESPONSE, qos=1)
        except aiomqtt.MqttError as exc:
            await client.__aexit__(None, None, None)
            raise BrokerError(f"the broker refused the dynamic-security answers: {exc}") from None
        self._client = client
        self._messages = aiter(client.messages)
        return self

    async def __aexit__(self, *exc_info) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)

    # -- the topic API --------------------------------------------------------------------------

    async def send(self, commands: Sequence[dict]) -> list[dict]:
        """Send commands in one message; their responses, in order (each may hold `error`)."""
        if not commands:
            return []
        client, messages = self._client, self._messages
        if client is None or messages is None:
            raise BrokerError("not connected to the broker")
        async with self._lock:
            batch = f"cityops-{next(self._ids)}"
            tagged = [dict(c, correlationData=f"{batch}:{i}") for i, c in enumerate(commands)]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout
            try:
                await client.publish(CONTROL, msgspec.json.encode({"commands": tagged}), qos=1)
                while True:
                    message = await asyncio.wait_for(anext(messages),
                                                     max(0.0, deadline - loop.time()))
                    answer = msgspec.json.decode(message.payload)
                    responses = answer.get("responses") or []
                    if responses and str(responses[0].get("correlationData", "")).startswith(
                            f"{batch}:"):
                        return responses
            except TimeoutError:
                raise BrokerError("the broker did not answer the dynamic-security commands "
                                  "(is the plugin loaded?)") from None
            except aiomqtt.MqttError as exc:
                raise BrokerError(f"lost the broker: {exc}") from None

    async def _checked(self, commands: Sequence[dict], allowed: tuple[str, ...] = ()) -> None:
        for command, response in zip(commands, await self.send(commands), strict=False):
            error = response.get("error")
            if error and error not in allowed:
                raise BrokerError(f"the broker refused {command['command']}: {error}")

    # -- device keys ----------------------------------------------------------------------------

    async def add_device_key(self, record: ApiKeyRecord, secret: str,
                             devices: Iterable[Device]) -> list[str]:
        """Make the key's client and role; returns the topics it may publish to."""
        topics = device_topics(record, devices, self.prefix)
        role = role_name(record.id)
        await self._checked([
            {"command": "createRole", "rolename": role, "textname": f"CityOps key {record.id}",
             "acls": [_acl(t) for t in topics]},
            {"command": "createClient", "username": record.id, "password": secret,
             "textname": record.name or f"CityOps {record.role} key",
             "roles": [{"rolename": role, "priority": 0}]},
        ])
        return topics

    async def remove_key(self, key_id: str) -> None:
        """Delete the key's client (which disconnects it) and role; absent ones are fine."""
        await self._checked([{"command": "deleteClient", "username": key_id},
                             {"command": "deleteRole", "rolename": role_name(key_id)}],
                            allowed=_NOT_FOUND)

    async def accounts(self) -> tuple[set[str], dict[str, list[str]]]:
        """CityOps's clients (key ids) and roles (key id -> topics), as the broker has them."""
        clients, roles = await self.send([
            {"command": "listClients", "verbose": False, "count": -1, "offset": 0},
            {"command": "listRoles", "verbose": True, "count": -1, "offset": 0},
        ])
        for response in (clients, roles):
            if response.get("error"):
                raise BrokerError(f"the broker refused {response['command']}: "
                                  f"{response['error']}")
        usernames = {c if isinstance(c, str) else c.get("username", "")
                     for c in clients.get("data", {}).get("clients", [])}
        topics = {}
        for r in roles.get("data", {}).get("roles", []):
            name = r.get("rolename", "")
            if name.startswith(ROLE_PREFIX):
                topics[name[len(ROLE_PREFIX):]] = sorted(
                    a["topic"] for a in r.get("acls", []) if a.get("acltype") == SEND)
        return {u for u in usernames if _KEY_ID.fullmatch(u)}, topics

    async def set_topics(self, key_id: str, have: Iterable[str], want: Iterable[str]) -> None:
        have, want = set(have), set(want)
        role = role_name(key_id)
        await self._checked(
            [{"command": "addRoleACL", "rolename": role, **_acl(t)} for t in sorted(want - have)]
            + [{"command": "removeRoleACL", "rolename": role, "acltype": SEND, "topic": t}
               for t in sorted(have - want)],
            allowed=("ACL with this topic already exists", "ACL not found"))

    async def sync(self, keys: Iterable[ApiKeyRecord], devices: Sequence[Device],
                   now: float) -> SyncResult:
        """Make the broker agree with the store: clients of keys that are revoked, expired or
        gone are removed, and every live device key's topics follow its devices."""
        result = SyncResult()
        active = {k.id: k for k in keys if k.role == Role.DEVICE.value and k.active_at(now)}
        clients, roles = await self.accounts()
        for key_id in sorted((clients | set(roles)) - set(active)):
            await self.remove_key(key_id)
            result.removed.append(key_id)
        for key_id, record in active.items():
            if record.expires_at is not None and (result.next_expiry is None
                                                  or record.expires_at < result.next_expiry):
                result.next_expiry = record.expires_at
            if key_id not in clients:
                result.missing.append(key_id)
                continue
            want = device_topics(record, devices, self.prefix)
            have = roles.get(key_id, [])
            if want != have:
                if key_id not in roles:
                    await self._checked([{"command": "createRole", "rolename":
                                          role_name(key_id), "acls": []},
                                         {"command": "addClientRole", "username": key_id,
                                          "rolename": role_name(key_id), "priority": 0}])
                await self.set_topics(key_id, have, want)
                result.updated.append(key_id)
        return result

    # -- CityOps's own intake ---------------------------------------------------------------------

    async def ensure_intake(self, username: str, password: str, topic_filter: str) -> bool:
        """Make the intake's client (may subscribe to the readings topics, shared or not) if
        the broker lacks it; True when it was made. An existing one is left as it is."""
        topic = topic_filter.split("/", 2)[2] if topic_filter.startswith("$share/") else \
            topic_filter
        wanted = [f"{topic_prefix(topic)}/#", f"$share/+/{topic_prefix(topic)}/#"]
        responses = await self.send([
            {"command": "createRole", "rolename": INTAKE_ROLE,
             "textname": "CityOps intake: reads device readings",
             "acls": [{"acltype": kind, "topic": t, "allow": True, "priority": 0}
                      for t in wanted for kind in ("subscribePattern", "publishClientReceive")]},
            {"command": "createClient", "username": username, "password": password,
             "textname": "CityOps intake", "roles": [{"rolename": INTAKE_ROLE, "priority": 0}]},
        ])
        role, client = (r.get("error") for r in responses)
        if role and role != "Role already exists":
            raise BrokerError(f"the broker refused createRole: {role}")
        if client and client != "Client already exists":
            raise BrokerError(f"the broker refused createClient: {client}")
        return client is None


class BrokerSync:
    """Keeps the broker's device clients in step with the store, on a node: every `every_s`
    and at each device key's expiry. A broker or store that is away is retried."""

    def __init__(self, store: Store, devices: Callable[[], Sequence[Device]], admin_url: str,
                 prefix: str, *, every_s: float = 30.0, clock: Callable[[], float] = time.time,
                 intake: tuple[str, str, str] | None = None) -> None:
        self.store = store
        self.devices = devices
        self.admin_url = admin_url
        self.prefix = prefix
        self.every_s = every_s
        self.clock = clock
        self.intake = intake  # (username, password, topic filter) of the node's own intake
        self.runs = 0
        self.last_error = ""
        self._warned: set[str] = set()
        self._started = 0  # rounds begun
        self._finished = 0  # rounds ended, well or not
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._worker = Background("mqtt-broker-sync", self._run)

    async def start(self) -> None:
        self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()

    async def sync_now(self, timeout: float | None = None) -> None:
        """Start a round now and wait until one begun after this call has ended (a round
        already under way may have read the store before the change that prompted this)."""
        target = self._started + 1
        self._wake.set()

        async def done() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: self._finished >= target)

        await asyncio.wait_for(done(), timeout)

    async def once(self, accounts: BrokerAccounts) -> SyncResult:
        result = await accounts.sync(await self.store.list_keys(), list(self.devices()),
                                     self.clock())
        for key_id in result.removed:
            log.info("MQTT: removed the broker client of key %s (revoked, expired or gone)",
                     key_id)
        for key_id in result.missing:
            if key_id not in self._warned:
                self._warned.add(key_id)
                log.warning("MQTT: device key %s has no broker client (made while the broker "
                            "was away or before dynamic security was set up): rotate it with "
                            "`cityops keys rotate %s` to give its devices MQTT", key_id, key_id)
        self.runs += 1
        return result

    async def _run(self) -> None:
        intake_done = self.intake is None
        while True:
            self._wake.clear()
            self._started += 1
            wait = self.every_s
            try:
                async with BrokerAccounts(self.admin_url, self.prefix) as accounts:
                    if not intake_done and self.intake is not None:
                        if await accounts.ensure_intake(*self.intake):
                            log.info("MQTT: made the broker client %s for this node's intake",
                                     self.intake[0])
                        intake_done = True
                    result = await self.once(accounts)
                self.last_error = ""
                if result.next_expiry is not None:
                    wait = min(wait, max(0.0, result.next_expiry - self.clock()) + 0.01)
            except (BrokerError, OSError) as exc:
                self.last_error = str(exc)
                log.warning("MQTT: keeping broker clients in step failed (%s); retrying", exc)
            except Exception as exc:  # the store away, say: the next round tries again
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("MQTT: keeping broker clients in step failed; retrying")
            async with self._changed:
                self._finished = self._started
                self._changed.notify_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)


def _shown(url: str) -> str:
    """A URL without its password, for messages."""
    return re.sub(r"//([^:@/]*):[^@/]*@", r"//\1:***@", url)
