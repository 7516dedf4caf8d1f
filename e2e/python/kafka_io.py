"""Reading what mongorelay wrote to Kafka, with the confluent-kafka client a downstream user has.

Every read has a deadline, and reads from the beginning with a throwaway consumer group, so
tests never depend on a group's committed state. Consumers read committed data only (the
librdkafka default), as a consumer of a transactional producer must.
"""
import json
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient


# What a partition answers until its first leader is elected (a topic created moments ago).
ELECTION_ERRORS = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                   KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION}


@dataclass(frozen=True)
class Record:
    """One Kafka record as it sits in the log."""
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def existing_topics(bootstrap, timeout_s=10):
    return set(admin(bootstrap).list_topics(timeout=timeout_s).topics)


def delete_topics(bootstrap, topics, timeout_s=30):
    """Deletes topics (a test's leftovers); topics that do not exist are ignored."""
    topics = sorted(set(topics) & existing_topics(bootstrap))
    if not topics:
        return
    client = admin(bootstrap)  # kept alive until the results are in
    for future in client.delete_topics(topics, operation_timeout=timeout_s).values():
        future.result(timeout=timeout_s)


def read_topics(bootstrap, topics, *, min_records=0, quiet_s=0.0, stall_s=20.0, timeout_s=60.0,
                wait_for_topics=True):
    """Every record of topics, from the beginning, in log order per partition.

    Reading stops once every partition is read up to where it ended when reading began (a topic
    written to all the time has no moment at its end), at least min_records arrived and nothing
    new arrived for quiet_s seconds (a pipeline still catching up keeps producing); or, short of
    min_records, once nothing new arrived for stall_s seconds (a pipeline that lost records
    would otherwise be waited for until the deadline); or at the deadline. The caller's checks
    then say what is missing. A topic that does not exist yet is waited for until the deadline
    if wait_for_topics, else skipped.
    """
    deadline = time.monotonic() + timeout_s
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"e2e-reader-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "fetch.wait.max.ms": 100,
    })
    try:
        partitions = _partitions(consumer, topics, deadline if wait_for_topics else time.monotonic())
        marks = {tp: _watermarks(consumer, tp, deadline) for tp in partitions}
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in partitions])
        records = []
        caught_up = {tp for tp, (low, high) in marks.items() if low >= high}
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.2):
                tp = (msg.topic(), msg.partition())
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"consume {tp}: {msg.error()}")
                    caught_up.add(tp)  # also where a transaction still open holds committed reads back
                    continue
                if msg.offset() + 1 >= marks[tp][1]:
                    caught_up.add(tp)
                last_new = time.monotonic()
                records.append(Record(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value()))
            silent = time.monotonic() - last_new
            if caught_up >= partitions and (silent >= quiet_s and len(records) >= min_records or silent >= stall_s):
                break
        return records
    finally:
        consumer.close()


def _watermarks(consumer, tp, deadline):
    """A partition's (low, high) offsets, retrying while a new topic's leader is being elected."""
    while True:
        try:
            return consumer.get_watermark_offsets(TopicPartition(*tp), timeout=10)
        except KafkaException as err:
            transient = err.args[0].retriable() or err.args[0].code() in ELECTION_ERRORS
            if not transient or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _partitions(consumer, topics, deadline):
    """The (topic, partition) pairs of the topics that exist, waiting for missing ones until deadline."""
    while True:
        metadata = consumer.list_topics(timeout=10)
        found = {(t, p) for t in topics if t in metadata.topics and not metadata.topics[t].error
                 for p in metadata.topics[t].partitions}
        if {t for t, _ in found} >= set(topics) or time.monotonic() >= deadline:
            return found
        time.sleep(0.5)


# ------------------------------------------------------------------------------- offsets

def offset_key(connector, db, coll, shard="0-of-1"):
    """A stream task's key in the offsets topic, byte for byte (DESIGN.md 5: compaction merges only
    identical bytes)."""
    return json.dumps([connector, {"db": db, "coll": coll, "shard": shard}], separators=(",", ":")).encode()


STAMP_PREFIXES = (b'["mongorelay.cluster",', b'{"keytype":"CLUSTER",')


def is_stamp(key):
    """Whether a key of the offsets or schemas topic is a cluster's stamp (DESIGN.md 5), not an
    offset or a schema."""
    return key is not None and key.startswith(STAMP_PREFIXES)


def read_offsets(bootstrap, topic, timeout_s=20):
    """Every value written to the offsets topic per key, oldest first (None for a tombstone);
    the cluster stamps are left out."""
    history = {}
    for record in read_topics(bootstrap, [topic], timeout_s=timeout_s, wait_for_topics=False):
        if is_stamp(record.key):
            continue
        history.setdefault(record.key, []).append(
            None if record.value is None else json.loads(record.value))
    return history


def cluster_time(offset_value):
    """The (t, i) position an offset value commits; None for a tombstone or a value without one
    (a snapshot's progress, say)."""
    ct = (offset_value or {}).get("cluster_time")
    return (ct["t"], ct["i"]) if ct else None
