"""The image inventory on DynamoDB: items per image, written with forward-only conditional updates.

| item                  | pk                  | sk                                   |
| --------------------- | ------------------- | ------------------------------------ |
| image directory       | `II`                | digest                               |
| name                  | `IN#<digest>`       | `["repository","tag","cloud","acct"]`|
| name by repository    | `IR#<repository>`   | `["tag","digest","cloud","acct"]`    |
| sighting              | `IS#<image>`        | `["cloud","acct","cluster","ns","workload"]` |
| sighting by namespace | `IM#<namespace>`    | `["image","cloud","acct","cluster","workload"]` |
| exposure              | `IX#<namespace>`    | `["cloud","acct","cluster","workload"]` |
| vulnerability         | `IV#<image>`        | finding key (JSON)                   |
| vulnerability's image | `IK`                | finding key (JSON), `img`            |
| vulnerability by priority | `IP#<shard>`    | inverted risk score `#` finding key (JSON) |

Each evidence item is written with `UpdateItem` conditioned on its stored last time being older
(`attribute_not_exists(lt) OR lt < :t`): the condition failing is how a replay is recognised, so
no read precedes the write, and concurrent writers converge on the newest evidence.

The priority index (`IP#<shard>`) lets the most-urgent-first reads stop at a page. A
vulnerability's shard is fixed by its finding key's hash, so that a burst of new vulnerabilities
(an Inspector scan) spreads over as many partition keys as the listing index has; the shards
read in sort-key order and merged give every prioritized vulnerability by descending score.
Setting a priority puts the new index item first, then records its sort key and a write token on
the vulnerability item, then deletes the index item it replaced, on condition that it still
carries the token of the write that made it. A crash or a race can so leave an index item its
vulnerability no longer names, never a vulnerability without its index item; readers check each
index item against its vulnerability and skip such ones.
"""

from __future__ import annotations

import heapq
import itertools
import uuid
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

import orjson

from corral.inventory import DIGEST_PREFIX, Exposure, FindingKey, ImageName, Observations, Sighting, Vulnerable
from corral.priority import Priority
from corral.stores import images
from corral.stores.base import FindingQuery, StoredFinding
from corral.stores.dynamodb.items import SHARDS, Item, as_n, as_s, get_n, get_s, listing_pk
from corral.stores.dynamodb.table import BATCH_GET_KEYS, Table
from corral.stores.images import ImageEvidence, ImageVulnerability, SightingRecord

BY_PRIORITY: Final = "IP#"
"""The partitions of the priority index (a shard number follows): one item per prioritized vulnerability."""
_SHARD_PAGE: Final = 25
"""Index items read from each shard at a time: a first page of the merged order costs a query per shard."""
PRIORITY_INDEX_VERSION: Final = 4
"""The table schema version from which every prioritized vulnerability has its index item."""
_SCORE_CEILING: Final = 1000


def _priority_sk(risk_score: int, key: str) -> str:
    """The index sort key: scores (0-100) inverted and zero-padded sort most urgent first, ties by finding key."""
    return f"{_SCORE_CEILING - risk_score:04d}#{key}"


def _priority_pk(key: str) -> str:
    """The index shard of a vulnerability: fixed by its finding key's hash, one of as many as the listing has."""
    return BY_PRIORITY + listing_pk(key).removeprefix("F#")


def _json(*parts: object) -> str:
    return orjson.dumps(list(parts)).decode()


def _bool(value: bool | None) -> dict[str, Any]:
    return {"NULL": True} if value is None else {"BOOL": value}


def _read_bool(item: Item, name: str) -> bool | None:
    value = item.get(name)
    return None if value is None or "NULL" in value else bool(value["BOOL"])


_FORWARD = "attribute_not_exists(#lt) OR #lt < :t"


def _forward_update(key: Item, sets: dict[str, Any], at: int, *, strict: bool = True) -> dict[str, Any]:
    """The update_item arguments that set `sets` and move the item's last time forward to `at`."""
    names = {f"#{i}": name for i, name in enumerate(sets)}
    values = {f":{i}": value for i, value in enumerate(sets.values())}
    expression = ", ".join(f"#{i} = :{i}" for i in range(len(sets)))
    return {
        "Key": key,
        "UpdateExpression": f"SET {expression}, #lt = :t, #ft = if_not_exists(#ft, :t)",
        "ConditionExpression": _FORWARD if strict else "attribute_not_exists(#lt) OR #lt <= :t",
        "ExpressionAttributeNames": {**names, "#lt": "lt", "#ft": "ft"},
        "ExpressionAttributeValues": {**values, ":t": as_n(at)},
    }


class Images(Table):
    """The image-inventory methods of the DynamoDB store."""

    @abstractmethod
    def matching(self, keys: Iterable[FindingKey], query: FindingQuery) -> list[StoredFinding]:
        """The open findings of `keys` that match `query`, in order (`Queries.matching`)."""

    # Writing ----------------------------------------------------------------------------------------

    def record_images(self, batch: Sequence[Observations], *, fresh_since: int | None = None) -> list[str]:
        """Record a batch's observations; return the digests whose runtime evidence or exposure moved forward."""
        names = list(images.latest_names(batch).values())
        sightings = list(images.latest_sightings(batch).values())
        exposures = list(images.latest_exposures(batch).values())
        vulnerabilities = list(images.latest_vulnerabilities(batch).values())
        digests = {n.digest for n in names} | {s.image for s in sightings if s.exact}
        digests |= {v.image for v in vulnerabilities if v.image.startswith("sha256:")}
        if digests:
            self._batch_write([{"PutRequest": {"Item": {"pk": as_s("II"), "sk": as_s(d)}}} for d in sorted(digests)])
        self._pool_map(self._put_name, names)
        before = self._pool_map(self._put_sighting, sightings)
        moved = [
            s
            for s, last in zip(sightings, before, strict=True)
            if last is not None and images.moves_evidence(last, fresh_since)
        ]
        exposed = [e for e, ok in zip(exposures, self._pool_map(self._put_exposure, exposures), strict=True) if ok]
        self._pool_map(self._put_vulnerability, vulnerabilities)
        changed = {s.image for s in moved}
        for item in self._partitions([f"IM#{namespace}" for namespace in sorted({e.namespace for e in exposed})]):
            record = _sighting(item)
            if any(e.names(record.sighting) for e in exposed):
                changed.add(record.sighting.image)
        return self._digests_of(sorted(changed))

    def _forward(self, key: Item, sets: dict[str, Any], at: int, *, strict: bool = True) -> bool:
        """Move an item forward to source time `at`; False (nothing written) when it is not newer."""
        return self._if("update_item", **_forward_update(key, sets, at, strict=strict))

    def _advance(self, key: Item, sets: dict[str, Any], at: int) -> int | None:
        """As `_forward`, returning the item's last time before (0 when new), or None when not newer."""
        answer = self._if_answer("update_item", **_forward_update(key, sets, at), ReturnValues="UPDATED_OLD")
        if answer is None:
            return None
        before = answer.get("Attributes", {}).get("lt")
        return int(before["N"]) if before else 0

    def _put_name(self, name: ImageName) -> None:
        attrs = {
            "dg": as_s(name.digest),
            "rp": as_s(name.repository),
            "tg": as_s(name.tag),
            "rg": as_s(name.registry),
            "c": as_s(name.cloud),
            "a": as_s(name.account),
        }
        place = (name.cloud, name.account)
        self._forward(
            {"pk": as_s(f"IN#{name.digest}"), "sk": as_s(_json(name.repository, name.tag, *place))},
            attrs,
            name.source_time,
        )
        self._forward(
            {"pk": as_s(f"IR#{name.repository}"), "sk": as_s(_json(name.tag, name.digest, *place))},
            attrs,
            name.source_time,
        )

    def _put_sighting(self, sighting: Sighting) -> int | None:
        """Record a sighting; its last time before (0 when new), or None when it was not newer."""
        attrs = {
            "img": as_s(sighting.image),
            "c": as_s(sighting.cloud),
            "a": as_s(sighting.account),
            "cl": as_s(sighting.cluster),
            "ns": as_s(sighting.namespace),
            "wl": as_s(sighting.workload),
            "by": as_s(sighting.reporter),
        }
        key = {"pk": as_s(f"IS#{sighting.image}"), "sk": as_s(_json(*sighting.place))}
        before = self._advance(key, attrs, sighting.source_time)
        s = sighting
        mirror = {
            "pk": as_s(f"IM#{s.namespace}"),
            "sk": as_s(_json(s.image, s.cloud, s.account, s.cluster, s.workload)),
        }
        # Written even when the sighting was not newer, as names are: a redelivery after a crash
        # between the two writes fills the mirror in; otherwise its own condition makes it a no-op.
        self._forward(mirror, attrs, sighting.source_time)
        return before

    def _put_exposure(self, exposure: Exposure) -> bool:
        e = exposure
        attrs = {
            "c": as_s(e.cloud),
            "a": as_s(e.account),
            "cl": as_s(e.cluster),
            "ns": as_s(e.namespace),
            "wl": as_s(e.workload),
            "by": as_s(e.reporter),
            "on": {"BOOL": e.active},
        }
        key = {"pk": as_s(f"IX#{e.namespace}"), "sk": as_s(_json(e.cloud, e.account, e.cluster, e.workload))}
        return self._forward(key, attrs, e.source_time)

    def _put_vulnerability(self, v: Vulnerable) -> None:
        attrs = {
            "k": as_s(_json(*v.key)),
            "img": as_s(v.image),
            "sev": as_n(v.severity_id),
            "op": {"BOOL": v.open},
            "cv": as_s(orjson.dumps(v.cves).decode()),
            "ex": _bool(v.exploit),
            "fx": _bool(v.fix),
        }
        key = _json(*v.key)
        if self._forward({"pk": as_s(f"IV#{v.image}"), "sk": as_s(key)}, attrs, v.source_time, strict=False):
            self._forward({"pk": as_s("IK"), "sk": as_s(key)}, {"img": as_s(v.image)}, v.source_time, strict=False)

    def _digests_of(self, keys: Sequence[str]) -> list[str]:
        digests = {k for k in keys if k.startswith("sha256:")}
        refs = [k for k in keys if not k.startswith("sha256:")]
        digests |= {n.digest for n in self._names_by_reference(refs)}
        return sorted(digests)

    def _names_by_reference(self, refs: Sequence[str]) -> list[ImageName]:
        wanted = set(refs)
        repositories = sorted({ref.rpartition(":")[0] for ref in refs if ":" in ref})
        return [n for n in map(_name, self._partitions([f"IR#{r}" for r in repositories])) if n.reference in wanted]

    def image_priorities(self, findings: Sequence[Vulnerable]) -> dict[FindingKey, Priority]:
        """Return the priority last given to each of these Vulnerability Findings (see `Store`)."""
        keys = [{"pk": as_s(f"IV#{v.image}"), "sk": as_s(_json(*v.key))} for v in findings]
        found: dict[FindingKey, Priority] = {}
        for items in self._batch_get(keys).values() if keys else ():
            for row in map(_vulnerability, items):
                if row.vulnerable.open and row.priority is not None:
                    found[row.key] = row.priority
        return found

    def set_image_priorities(self, rows: Sequence[tuple[Vulnerable, Priority]]) -> None:
        """Remember the priority last given to each Vulnerability Finding, where it is stored for the image it names."""
        self._pool_map(self._set_priority, rows)

    def _set_priority(self, row: tuple[Vulnerable, Priority]) -> None:
        v, p = row
        key = _json(*v.key)
        sk = _priority_sk(p.risk_score, key)
        token = uuid.uuid4().hex  # names this write's index item: only the write that replaces it deletes it
        self._call(
            "put_item",
            Item={
                "pk": as_s(_priority_pk(key)),
                "sk": as_s(sk),
                "k": as_s(key),
                "img": as_s(v.image),
                "pid": as_n(p.priority_id),
                "run": {"BOOL": p.running},
                "pt": as_s(token),
            },
        )
        answer = self._if_answer(
            "update_item",
            Key={"pk": as_s(f"IV#{v.image}"), "sk": as_s(key)},
            UpdateExpression="SET #p = :p, #r = :r, #c = :c, #x = :x, #d = :d, #b = :b, #ps = :ps, #pt = :pt",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={
                "#p": "pid", "#r": "rs", "#c": "ctx", "#x": "xp", "#d": "dt", "#b": "bs", "#ps": "ps", "#pt": "pt",
            },
            ExpressionAttributeValues={
                ":p": as_n(p.priority_id),
                ":r": as_n(p.risk_score),
                ":c": as_s(p.context),
                ":x": {"BOOL": p.exposed},
                ":d": as_s(p.details),
                ":b": as_n(p.basis),
                ":ps": as_s(sk),
                ":pt": as_s(token),
            },
            ReturnValues="UPDATED_OLD",
        )  # fmt: skip
        if answer is None:  # no such vulnerability: the new index item would name nothing
            self._drop_index_item(key, sk, token)
            return
        before = answer.get("Attributes", {})
        if "ps" in before and get_s(before, "ps") != sk:
            self._drop_index_item(key, get_s(before, "ps"), get_s(before, "pt"))

    def _drop_index_item(self, key: str, sk: str, token: str) -> None:
        # Conditional on the token: a concurrent write that put the same sort key again keeps its item.
        self._if(
            "delete_item",
            Key={"pk": as_s(_priority_pk(key)), "sk": as_s(sk)},
            ConditionExpression="#pt = :pt",
            ExpressionAttributeNames={"#pt": "pt"},
            ExpressionAttributeValues={":pt": as_s(token)},
        )

    def _upgrade(self, version: int) -> None:
        """From a table without the priority index: an index item for each open prioritized vulnerability."""
        super()._upgrade(version)
        if 0 < version < PRIORITY_INDEX_VERSION:
            rows = [(r.vulnerable, r.priority) for r in self.image_vulnerabilities() if r.priority is not None]
            self._pool_map(self._set_priority, rows)

    # Reading ----------------------------------------------------------------------------------------

    def image_evidence(self, digests: Sequence[str]) -> dict[str, ImageEvidence]:
        """Return what the inventory knows of each digest (names, sightings exact and probable, exposures)."""
        if not digests:
            return {}
        names = [_name(i) for i in self._partitions([f"IN#{d}" for d in sorted(set(digests))])]
        refs = images.references(names)
        sightings = images.sort_sightings(
            _sighting(i) for i in self._partitions([f"IS#{image}" for image in sorted({*digests, *refs})])
        )
        tagged = images.tagged(sightings)
        if tagged:
            asked = set(digests)
            names += [n for n in self._names_by_reference(tagged) if n.digest not in asked]
        namespaces = sorted({s.sighting.namespace for s in sightings})
        exposures = [_exposure(i) for i in self._partitions([f"IX#{ns}" for ns in namespaces])]
        return images.resolve(digests, names, sightings, exposures)

    def image_vulnerabilities(self, digests: Sequence[str] | None = None) -> list[ImageVulnerability]:
        """Return the open Vulnerability Findings of these images (all images when None)."""
        if digests is None:
            digests = sorted({get_s(i, "img") for i in self._partition("IK")})
        found = [_vulnerability(i) for i in self._partitions([f"IV#{d}" for d in sorted(set(digests))])]
        return sorted((v for v in found if v.vulnerable.open), key=lambda v: v.key)

    def by_priority(self, least_id: int = 0, *, running: bool = False) -> Iterator[ImageVulnerability]:
        """Yield open vulnerabilities with a priority of at least `least_id`, most urgent first.

        Ties come in the order of the finding key's JSON text. The index shards are read a page at
        a time and merged by sort key; each item is checked against the vulnerability it names
        (its current priority, open or not), with one `BatchGetItem` per hundred.
        """
        names = {"#pid": "pid"}
        values: dict[str, Any] = {":least": as_n(least_id)}
        condition = "#pid >= :least"
        if running:
            names["#run"] = "run"
            values[":run"] = {"BOOL": True}
            condition += " AND #run = :run"
        queries = [
            {
                "KeyConditionExpression": "pk = :pk",
                "FilterExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {**values, ":pk": as_s(f"{BY_PRIORITY}{n:02d}")},
                "ConsistentRead": True,
                "Limit": _SHARD_PAGE,
            }
            for n in range(SHARDS)
        ]
        # Every shard's first page at once: the merge needs the head of each before it yields anything.
        firsts = self._pool_map(lambda params: self._call("query", **params), queries)
        shards = [self._rest_of_query(first, params) for first, params in zip(firsts, queries, strict=True)]
        entries = heapq.merge(*shards, key=lambda entry: get_s(entry, "sk"))
        while page := list(itertools.islice(entries, BATCH_GET_KEYS)):
            keys = [{"pk": as_s(f"IV#{get_s(e, 'img')}"), "sk": e["k"]} for e in page]
            current = {
                (get_s(item, "pk"), get_s(item, "sk")): item
                for items in self._batch_get(keys).values()
                for item in items
            }
            for entry in page:
                item = current.get((f"IV#{get_s(entry, 'img')}", get_s(entry, "k")))
                if item is None or "ps" not in item or get_s(item, "ps") != get_s(entry, "sk"):
                    continue  # the vulnerability has another priority now, or is gone
                row = _vulnerability(item)
                given = row.priority
                wanted = given is not None and given.priority_id >= least_id and (given.running or not running)
                if row.vulnerable.open and wanted:
                    yield row

    def prioritized(self, query: FindingQuery, *, least_id: int, running: bool) -> list[StoredFinding]:
        """Return open Vulnerability Findings by their last priority, most urgent first (see `Store`).

        Along the priority index, each finding read with the listing's filters (`Queries.matching`),
        until the page is full.
        """
        return self.matching((row.key for row in self.by_priority(least_id, running=running)), query)

    def ranked_image_digests(self, limit: int) -> list[str]:
        """Return the digests worst first by the priority last given to an open vulnerability (see `Store`).

        Along the priority index a score at a time (images of one score by digest), until `limit`
        images. Only when fewer images than that have a priority is every vulnerability read, for
        the images whose vulnerabilities have none, then every other digest.
        """
        if limit <= 0:
            return []
        ranked: list[str] = []
        chosen: set[str] = set()
        for _, rows in itertools.groupby(self.by_priority(), key=lambda row: row.priority and row.priority.risk_score):
            images_of_score = sorted({r.vulnerable.image for r in rows if r.vulnerable.image.startswith(DIGEST_PREFIX)})
            ranked += [image for image in images_of_score if image not in chosen]
            chosen.update(images_of_score)
            if len(ranked) >= limit:
                return ranked[:limit]
        worst: dict[str, int] = {}
        for row in self.image_vulnerabilities():
            image = row.vulnerable.image
            if image.startswith(DIGEST_PREFIX):
                score = row.priority.risk_score if row.priority is not None else -1
                worst[image] = max(worst.get(image, -1), score)
        ranked = [d for d, _ in sorted(worst.items(), key=lambda pair: (-pair[1], pair[0]))[:limit]]
        if len(ranked) < limit:
            chosen = set(ranked)
            ranked += [d for d in self.image_digests() if d not in chosen][: limit - len(ranked)]
        return ranked

    def image_digests(self, prefix: str = DIGEST_PREFIX, *, limit: int | None = None) -> list[str]:
        """Return the digests known (named, seen running or vulnerable) that start with `prefix` (see `Store`)."""
        query: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": as_s("II"), ":prefix": as_s(prefix)},
            "ConsistentRead": True,
        }
        if limit is not None:
            query["Limit"] = limit  # items in key order: the first `limit` are the answer
            return [get_s(i, "sk") for i in self._call("query", **query).get("Items", [])]
        return [get_s(i, "sk") for i in self._query_all(**query)]


def _name(item: Item) -> ImageName:
    return ImageName(
        get_s(item, "dg"),
        get_s(item, "rp"),
        get_s(item, "tg"),
        get_s(item, "rg"),
        get_s(item, "c"),
        get_s(item, "a"),
        get_n(item, "lt"),
    )


def _sighting(item: Item) -> SightingRecord:
    sighting = Sighting(
        get_s(item, "img"),
        get_s(item, "c"),
        get_s(item, "a"),
        get_s(item, "cl"),
        get_s(item, "ns"),
        get_s(item, "wl"),
        get_s(item, "by"),
        get_n(item, "lt"),
    )
    return SightingRecord(sighting, get_n(item, "ft"))


def _exposure(item: Item) -> Exposure:
    return Exposure(
        get_s(item, "c"),
        get_s(item, "a"),
        get_s(item, "cl"),
        get_s(item, "ns"),
        get_s(item, "wl"),
        get_s(item, "by"),
        get_n(item, "lt"),
        bool(item["on"]["BOOL"]),
    )


def _vulnerability(item: Item) -> ImageVulnerability:
    product, account, uid = orjson.loads(get_s(item, "k"))
    vulnerable = Vulnerable(
        (product, account, uid),
        get_s(item, "img"),
        get_n(item, "sev"),
        bool(item["op"]["BOOL"]),
        tuple(orjson.loads(get_s(item, "cv"))),
        _read_bool(item, "ex"),
        _read_bool(item, "fx"),
        get_n(item, "lt"),
    )
    row = {
        "priority_id": get_n(item, "pid") if "pid" in item else None,
        "risk_score": get_n(item, "rs") if "rs" in item else None,
        "context": get_s(item, "ctx") if "ctx" in item else None,
        "exposed": bool(item["xp"]["BOOL"]) if "xp" in item else None,
        "details": get_s(item, "dt") if "dt" in item else None,
        "basis": get_n(item, "bs") if "bs" in item else None,
    }
    return ImageVulnerability(vulnerable, images.priority_of(row))
