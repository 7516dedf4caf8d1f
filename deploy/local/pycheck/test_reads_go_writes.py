"""Third-party Python clients read what the Go side wrote (run by deploy/local/python_test.go)."""
import os
import time

from confluent_kafka import Consumer
from pymongo import MongoClient


def test_pymongo_reads_document_written_by_go():
    client = MongoClient(os.environ["MONGORELAY_TEST_MONGO"], serverSelectionTimeoutMS=10000)
    doc = client["envtest"]["pycheck"].find_one({"_id": os.environ["ENVTEST_DOC_ID"]})
    assert doc == {
        "_id": os.environ["ENVTEST_DOC_ID"],
        "n": 42,
        "big": 1 << 40,
        "s": "héllo",
        "nested": {"a": [1, 2.5, "x"]},
    }


def test_confluent_kafka_consumes_record_produced_by_go():
    topic = os.environ["ENVTEST_TOPIC"]
    consumer = Consumer({
        "bootstrap.servers": os.environ["MONGORELAY_TEST_KAFKA"],
        "group.id": "pycheck-" + topic,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        msg = None
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error():
                raise AssertionError(f"consume {topic}: {msg.error()}")
        assert msg is not None, f"no record on {topic} within 30 s"
        assert msg.key() == b"go-key"
        assert msg.value() == os.environ["ENVTEST_VALUE"].encode()
        assert msg.headers() == [("origin", b"franz-go")]
    finally:
        consumer.close()
