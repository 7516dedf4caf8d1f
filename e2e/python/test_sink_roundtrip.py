"""MongoDB → Kafka → MongoDB on a 3-node cluster, a sink node killed half-way (issue 21).

Three `mongorelay worker` processes form one cluster. A source connector captures the test's
database A (typed Avro through the cluster's schema registry, the default) to topics of two
partitions each; a sink connector writes those topics into database B, one collection per
topic, applying each change event as the operation it describes. The workload's 20,000 random
operations (inserts, updates with $set, $push and $unset, replaces and deletes, over documents
with nested documents, arrays, ObjectId, Decimal128, dates, binary, int32, int64 and doubles and
field names Avro cannot hold) run on A; half-way, the node running the sink's first task is
killed with SIGKILL, and its tasks move to the other two. Afterwards B must equal A document for
document, every value of the same BSON type (field order aside: typed Avro records keep their
schema's order).
"""
import json
import threading
import time
import urllib.request

from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS

from pipeline import free_port
from processes import Process
from workload import COLLECTIONS, MixedLoad

OPS = 20_000


def rest(url, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


class Cluster:
    """Three worker processes sharing the pipeline's offsets topic."""

    def __init__(self, pipeline, processes, workdir):
        self.pipeline, self.processes, self.workdir = pipeline, processes, workdir
        self.ids = ["n1", "n2", "n3"]
        self.http = {i: f"127.0.0.1:{free_port()}" for i in self.ids}
        raft = {i: f"127.0.0.1:{free_port()}" for i in self.ids}
        peers = ",".join(f"{i}={raft[i]}={self.http[i]}" for i in self.ids)
        self.nodes = {}
        for n, i in enumerate(self.ids):
            argv = [pipeline.binary, "worker", "--node-id", i, "--data-dir", str(workdir / i),
                    "--cluster-id", pipeline.name, "--http-listen", self.http[i], "--raft-listen", raft[i],
                    "--registry-listen", f"127.0.0.1:{free_port()}", "--kafka", pipeline.kafka,
                    "--offsets-topic", pipeline.offsets_topic, "--peers", peers, "--log-format", "json"]
            if n == 0:
                argv.append("--bootstrap")
            self.nodes[i] = Process(i, argv, workdir)
            processes.append(self.nodes[i])

    def alive(self):
        return [i for i in self.ids if self.nodes[i].alive()]

    def url(self, path):
        return f"http://{self.http[self.alive()[0]]}{path}"

    def wait_ready(self, timeout_s=60):
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if rest(self.url("/cluster")).get("leader"):
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise AssertionError("the cluster has no leader:\n" + "\n".join(self.nodes[i].tail() for i in self.ids))
            time.sleep(0.5)

    def running_tasks(self, name):
        status = rest(self.url(f"/connectors/{name}/status"))
        return [t for t in status["tasks"] if t["state"] == "RUNNING"]


def canonical(doc):
    """A document as type-exact canonical Extended JSON with its keys sorted at every level."""
    return json_util.dumps(doc, sort_keys=True, json_options=CANONICAL_JSON_OPTIONS)


def test_round_trip_through_kafka_survives_a_killed_sink_node(pipeline, mongo, processes, tmp_path):
    db_b = pipeline.db + "_b"
    cluster = Cluster(pipeline, processes, tmp_path)
    try:
        cluster.wait_ready()
        for c in COLLECTIONS:
            mongo[pipeline.db].create_collection(c)
        source = pipeline.connector(COLLECTIONS, {"topic.creation.default.partitions": 2})
        rest(cluster.url("/connectors"), "POST", source)
        pipeline.wait_streaming(cluster.nodes["n1"], COLLECTIONS, timeout_s=90)
        topics = [pipeline.topic(c) for c in COLLECTIONS]
        sink = {"name": pipeline.name + "-sink", "config": {
            "connector.class": "mongodb-sink", "mongodb.connection.string": pipeline.mongo_uri,
            "database": db_b, "topics": ",".join(topics),
            **{f"topic.override.{t}.collection": c for t, c in zip(topics, COLLECTIONS)}}}
        rest(cluster.url("/connectors"), "POST", sink)
        deadline = time.monotonic() + 60
        while len(cluster.running_tasks(sink["name"])) < 2 * len(COLLECTIONS):
            assert time.monotonic() < deadline, f"sink tasks not running: {rest(cluster.url('/connectors/' + sink['name'] + '/status'))}"
            time.sleep(0.5)

        load = MixedLoad(mongo[pipeline.db], OPS, seed=21)
        writer = threading.Thread(target=load.run, kwargs={"pause_s": 0.01})
        writer.start()
        while load.progress() < 0.5 and writer.is_alive():
            time.sleep(0.1)
        victim = cluster.running_tasks(sink["name"])[0]["worker_id"]
        assert victim in cluster.nodes, f"worker_id {victim} names no node"
        cluster.nodes[victim].kill()
        writer.join()
        assert load.log.count == OPS

        want = {c: {canonical(d["_id"]): canonical(d) for d in mongo[pipeline.db][c].find()} for c in COLLECTIONS}
        deadline, got = time.monotonic() + 180, None
        while time.monotonic() < deadline:
            got = {c: {canonical(d["_id"]): canonical(d) for d in mongo[db_b][c].find()} for c in COLLECTIONS}
            if got == want:
                break
            time.sleep(1)
        for c in COLLECTIONS:
            missing = want[c].keys() - got[c].keys()
            extra = got[c].keys() - want[c].keys()
            differ = [k for k in want[c].keys() & got[c].keys() if want[c][k] != got[c][k]]
            assert not (missing or extra or differ), (
                f"{c}: {len(want[c])} documents in A, {len(got[c])} in B; missing {len(missing)}, extra {len(extra)}, "
                f"different {len(differ)}; e.g. A {want[c].get(differ[0]) if differ else sorted(missing)[:1]} "
                f"B {got[c].get(differ[0]) if differ else sorted(extra)[:1]}")
        assert cluster.running_tasks(sink["name"]), "no sink task runs after the kill"
        assert all(t["worker_id"] != victim for t in cluster.running_tasks(sink["name"]))
    finally:
        mongo.drop_database(db_b)
