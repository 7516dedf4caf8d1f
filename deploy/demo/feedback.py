#!/usr/bin/env python3
"""Writes customer feedback as JSON messages to a Kafka topic, as a web page's backend would, and
shows each one landing in MongoDB, for `make demo`'s sink direction.

Each message is a JSON document with its own _id; some are later versions of an earlier one (a
customer editing a review). The `demo-sink` connector writes the topic into a collection of
MongoDB; this script polls that collection and prints, per message, how long it took to land.

    python deploy/demo/feedback.py --rate 1
"""
import argparse
import json
import os
import random
import signal
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pymongo import MongoClient

COMMENTS = ["great beans", "grinder too loud", "fast delivery", "mug arrived chipped", "will order again"]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kafka", default=os.environ.get("MONGORELAY_TEST_KAFKA", "127.0.0.1:19092"))
    parser.add_argument("--uri", default=os.environ.get("MONGORELAY_TEST_MONGO",
                                                        "mongodb://127.0.0.1:27117/?directConnection=true"))
    parser.add_argument("--topic", default="demo.feedback")
    parser.add_argument("--db", default="demo_sink", help="database the sink writes (default: demo_sink)")
    parser.add_argument("--collection", default="feedback")
    parser.add_argument("--rate", type=float, default=1, help="messages per second (default: 1)")
    parser.add_argument("--create-topic", action="store_true", help="create the topic and exit")
    return parser.parse_args(argv)


def create_topic(kafka, topic):
    admin = AdminClient({"bootstrap.servers": kafka})
    if topic in admin.list_topics(timeout=10).topics:
        return
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(timeout=30)


def landed(coll, doc, timeout_s=10):
    """Seconds until coll holds doc as sent, or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if coll.find_one({"_id": doc["_id"]}) == doc:
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def main(argv):
    args = parse_args(argv)
    create_topic(args.kafka, args.topic)
    if args.create_topic:
        return 0
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    producer = Producer({"bootstrap.servers": args.kafka, "linger.ms": 0})
    rng = random.Random()
    sent = 0
    with MongoClient(args.uri, serverSelectionTimeoutMS=5000) as client:
        coll = client[args.db][args.collection]
        try:
            while True:
                edit = sent > 3 and rng.random() < 0.3
                feedback_id = f"fb-{rng.randrange(sent) if edit else sent}"
                doc = {"_id": feedback_id, "rating": rng.randrange(1, 6), "comment": rng.choice(COMMENTS),
                       "edited": edit}
                producer.produce(args.topic, key=feedback_id.encode(), value=json.dumps(doc).encode())
                producer.flush(10)
                took = landed(coll, doc)
                where = f"{args.db}.{args.collection}"
                print(f"sink: {args.topic} <- {json.dumps(doc)}  landed in {where} "
                      + (f"after {took * 1000:.0f} ms" if took is not None else "NOT within 10 s"), flush=True)
                sent += 1
                time.sleep(1 / args.rate)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
