"""Decoding mongorelay's change records the way downstream users do, and grouping them per document.

Each value is decoded twice: by confluent-kafka's AvroDeserializer with its writer schema (what
a consumer sees), and by fastavro schema resolution from the writer schema to the subject's
latest version (what a consumer pinned to the newest schema sees, so every old record must still
resolve). Both decodings are kept with the schemas they were read with, for avrodoc's comparator.
"""
import io
import json
import struct
from dataclasses import dataclass, field

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

import avrodoc
from kafka_io import Record
from workload import canonical_json

MAX_UNDECODABLE = 20


@dataclass(frozen=True)
class RegisteredSchema:
    """One schema of the registry: its id, JSON form (for the comparator) and fastavro form."""
    schema_id: int
    tree: avrodoc.Schema
    parsed: object


class Registry:
    """A Confluent-compatible schema registry as a client sees it; every schema fetched once."""

    def __init__(self, client):
        self.client = client
        self._by_id = {}

    @classmethod
    def at(cls, url):
        return cls(SchemaRegistryClient({"url": url, "timeout": 10}))

    def schema(self, schema_id):
        if schema_id not in self._by_id:
            text = self.client.get_schema(schema_id).schema_str
            self._by_id[schema_id] = RegisteredSchema(schema_id, avrodoc.Schema(text),
                                                      fastavro.parse_schema(json.loads(text)))
        return self._by_id[schema_id]

    def latest(self, subject):
        return self.schema(self.client.get_latest_version(subject).schema_id)

    def versions(self, subject):
        return self.client.get_versions(subject)

    def subjects(self):
        return self.client.get_subjects()


@dataclass
class Change:
    """One record of a collection's topic, decoded; value None is a tombstone."""
    record: Record
    key_id: str                      # canonical extended JSON of the document's _id
    value: dict | None               # decoded with the writer schema by AvroDeserializer
    latest: dict | None              # decoded with the subject's latest schema by fastavro
    writer: RegisteredSchema | None
    reader: RegisteredSchema | None
    tombstoned: bool = False         # for a delete: a tombstone followed it

    @property
    def op(self):
        return self.value["op"]

    @property
    def source(self):
        return self.value["source"]

    def where(self):
        r = self.record
        return f"{r.topic}[{r.partition}]@{r.offset}"


def schema_id_of(payload):
    """The schema id of a Confluent wire-format payload (magic byte 0, then a big-endian id)."""
    if payload is None or len(payload) < 5 or payload[0] != 0:
        raise ValueError(f"not Confluent wire format: {payload[:8]!r}")
    return struct.unpack(">I", payload[1:5])[0]


class ChangeDecoder:
    """Decodes records of mongorelay's topics with a registry, both ways described above."""

    def __init__(self, registry):
        self.registry = registry
        self._deserializer = AvroDeserializer(registry.client)
        self._latest = {}

    def decode_all(self, records):
        """The decoded changes, and a problem line for every record that does not decode.

        Gives up after MAX_UNDECODABLE such records: past that the cause is one (a registry that
        is gone, say), and each further failure would cost the client's retries.
        """
        changes, problems = [], []
        for record in records:
            try:
                changes.append(self.decode(record))
            except (SerializationError, SchemaRegistryError, ValueError, EOFError) as err:
                problems.append(f"{record.topic}[{record.partition}]@{record.offset}: does not decode: {err!r}")
                if len(problems) >= MAX_UNDECODABLE:
                    problems.append(f"stopped decoding after {MAX_UNDECODABLE} failures")
                    break
        return changes, problems

    def decode(self, record):
        key = self._deserializer(record.key, SerializationContext(record.topic, MessageField.KEY))
        key_id = canonical_json(key["id"])
        if record.value is None:
            return Change(record, key_id, None, None, None, None)
        value = self._deserializer(record.value, SerializationContext(record.topic, MessageField.VALUE))
        writer = self.registry.schema(schema_id_of(record.value))
        reader = self._latest_of(f"{record.topic}-value")
        try:
            latest = fastavro.schemaless_reader(io.BytesIO(record.value[5:]), writer.parsed, reader.parsed)
        except Exception as err:
            raise ValueError(f"schema {writer.schema_id} does not resolve to the latest, "
                             f"{reader.schema_id}: {err!r}") from err
        return Change(record, key_id, value, latest, writer, reader)

    def _latest_of(self, subject):
        """The latest schema of subject, fetched once per decoder: build a decoder after the
        pipeline went quiet, so that "latest" is the final version."""
        if subject not in self._latest:
            self._latest[subject] = self.registry.latest(subject)
        return self._latest[subject]


@dataclass
class Timeline:
    """A collection's changes per document key, in log order, tombstones folded into their delete."""
    by_key: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)  # tombstones that follow no delete


def timeline(changes):
    """Groups decoded changes (in log order per partition) by document key."""
    out = Timeline()
    for change in changes:
        events = out.by_key.setdefault(change.key_id, [])
        if change.value is not None:
            events.append(change)
        elif events and events[-1].op == "d" and not events[-1].tombstoned:
            events[-1].tombstoned = True
        else:
            out.problems.append(f"{change.where()}: tombstone for {change.key_id} follows no delete")
    return out


def event_position(change):
    """An event's oplog position (t, i), from the resume token in its source block.

    A resume token's _data is a hex KeyString starting with 0x82 (a BSON timestamp) followed by
    the cluster time's seconds and increment, big-endian: the same (t, i) that the offsets topic's
    cluster_time holds. Debezium-style source ts_ms (seconds * 1000) and ord are the fallback.
    """
    data = _token_data(change.source.get("resume_token"))
    if data and data[:2] == "82" and len(data) >= 18:
        return int(data[2:10], 16), int(data[10:18], 16)
    return change.source["ts_ms"] // 1000, change.source["ord"]


def event_identity(change):
    """What makes two records the same change event: its resume token (else its position)."""
    return _token_data(change.source.get("resume_token")) or event_position(change)


def _token_data(token):
    """The _data hex string of a resume token given as a record, as JSON or as the bare hex string."""
    if not token:
        return None
    if isinstance(token, dict):
        return token.get("_data")
    if token.lstrip().startswith("{"):
        return json.loads(token).get("_data")
    return token
