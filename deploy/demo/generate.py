#!/usr/bin/env python3
"""Writes a steady stream of shop activity to MongoDB, for `make demo` to capture and show.

A "shop" database gets customers and orders (nested item arrays, ObjectIds, dates, Decimal128
prices) inserted, updated and deleted at a modest rate, one short line printed per operation,
so the records appearing on Kafka can be matched to what caused them.

    python deploy/demo/generate.py --rate 20 --count 500
    python deploy/demo/generate.py            # until Ctrl-C

The connection string defaults to MONGORELAY_TEST_MONGO (written by `make env-up`).
"""
import argparse
import datetime
import os
import random
import signal
import sys
import time

from bson import Decimal128, ObjectId
from pymongo import MongoClient

PRODUCTS = [("espresso beans", "12.90"), ("grinder", "89.00"), ("filter papers", "3.50"),
            ("kettle", "45.00"), ("mug", "9.99"), ("scale", "24.50")]
CITIES = ["Oslo", "Lyon", "Kyiv", "Lima", "Osaka"]
STATUSES = ["paid", "packed", "shipped", "delivered"]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uri", default=os.environ.get("MONGORELAY_TEST_MONGO",
                                                        "mongodb://127.0.0.1:27117/?directConnection=true"),
                        help="MongoDB connection string (default: $MONGORELAY_TEST_MONGO)")
    parser.add_argument("--db", default="shop", help="database to write (default: shop)")
    parser.add_argument("--rate", type=float, default=20, help="operations per second (default: 20)")
    parser.add_argument("--count", type=int, default=0, help="stop after this many operations (default: 0, never)")
    parser.add_argument("--seed", type=int, help="random seed, to replay the same activity")
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be positive")
    return args


class Shop:
    """The shop's activity: each method performs one operation and returns its line."""

    def __init__(self, db, rng):
        self.db, self.rng = db, rng
        for name in sorted({"customers", "orders"} - set(db.list_collection_names())):
            db.create_collection(name)  # from the first run on, so a connector started later sees both
        self.customers = [doc["_id"] for doc in db.customers.find({}, {"_id": 1})]
        self.orders = [doc["_id"] for doc in db.orders.find({"status": {"$ne": "delivered"}}, {"_id": 1})]

    def step(self):
        """One operation, chosen so the shop grows, moves orders along and sometimes shrinks."""
        if len(self.customers) < 5 or self.rng.random() < 0.1:
            return self.new_customer()
        roll = self.rng.random()
        if not self.orders or roll < 0.35:
            return self.new_order()
        if roll < 0.55:
            return self.add_item()
        if roll < 0.85:
            return self.advance_order()
        if roll < 0.92:
            return self.move_customer()
        return self.cancel_order()

    def new_customer(self):
        doc = {"name": self.rng.choice(["Ada", "Linus", "Grace", "Barbara", "Ken"]) + f" {len(self.customers)}",
               "address": {"city": self.rng.choice(CITIES), "zip": f"{self.rng.randrange(10000, 99999)}"},
               "since": now(), "tags": self.rng.sample(["vip", "newsletter", "b2b"], self.rng.randrange(3))}
        customer_id = self.db.customers.insert_one(doc).inserted_id
        self.customers.append(customer_id)
        return f"insert customers {customer_id} {doc['name']} ({doc['address']['city']})"

    def new_order(self):
        items = [self.item() for _ in range(self.rng.randrange(1, 4))]
        doc = {"customer": self.rng.choice(self.customers), "status": "new", "created": now(),
               "items": items, "total": total(items)}
        order_id = self.db.orders.insert_one(doc).inserted_id
        self.orders.append(order_id)
        return f"insert orders {order_id} {len(items)} items, total {doc['total']}"

    def add_item(self):
        order_id = self.rng.choice(self.orders)
        item = self.item()
        order = self.db.orders.find_one_and_update({"_id": order_id}, {"$push": {"items": item}},
                                                   return_document=True)
        self.db.orders.update_one({"_id": order_id}, {"$set": {"total": total(order["items"])}})
        return f"update orders {order_id} +{item['qty']} x {item['product']}"

    def advance_order(self):
        order_id = self.rng.choice(self.orders)
        order = self.db.orders.find_one({"_id": order_id}, {"status": 1})
        status = STATUSES[STATUSES.index(order["status"]) + 1] if order["status"] in STATUSES[:-1] else "paid"
        self.db.orders.update_one({"_id": order_id}, {"$set": {"status": status, f"at.{status}": now()}})
        if status == "delivered":
            self.orders.remove(order_id)
        return f"update orders {order_id} status {status}"

    def move_customer(self):
        customer_id = self.rng.choice(self.customers)
        city = self.rng.choice(CITIES)
        self.db.customers.update_one({"_id": customer_id}, {"$set": {"address.city": city}})
        return f"update customers {customer_id} moved to {city}"

    def cancel_order(self):
        order_id = self.rng.choice(self.orders)
        self.db.orders.delete_one({"_id": order_id})
        self.orders.remove(order_id)
        return f"delete orders {order_id} (cancelled)"

    def item(self):
        product, price = self.rng.choice(PRODUCTS)
        return {"sku": ObjectId(), "product": product, "qty": self.rng.randrange(1, 4), "price": Decimal128(price)}


def total(items):
    return Decimal128(str(sum(item["price"].to_decimal() * item["qty"] for item in items)))


def now():
    """The current time as MongoDB stores it (UTC, millisecond precision)."""
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop on SIGTERM as on Ctrl-C
    done = 0
    with MongoClient(args.uri, serverSelectionTimeoutMS=5000) as client:
        shop = Shop(client[args.db], random.Random(args.seed))
        interval, next_at = 1 / args.rate, time.monotonic()
        try:
            while not args.count or done < args.count:
                print(shop.step(), flush=True)
                done += 1
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
        except KeyboardInterrupt:
            pass
    print(f"{done} operations written to {args.db}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
