"""The README's quick starts, run as a user would run them: each marked block in order, against
the test servers, with the ports, database and binary replaced (every other word as written).

A block is marked by an HTML comment just above it, `<!-- quickstart: NAME -->`; what a user
does between blocks in prose (writing a document with mongosh) the test does with pymongo.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kafka_io import delete_topics, existing_topics
from pipeline import free_port, unique_suffix

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"<!-- quickstart: (\w+) -->\n```(\w+)\n(.*?)\n```", re.S)


def quickstarts():
    """The README's marked blocks, by name: (language, text)."""
    return {name: (lang, text) for name, lang, text in BLOCK.findall(README.read_text())}


class Run:
    """One test's substitutions and the process groups its blocks started."""

    def __init__(self, env, binary, workdir):
        self.env, self.binary, self.workdir = env, binary, workdir
        self.db = f"shop{unique_suffix()}"
        self.ports = {}
        self.groups = []

    def port(self, number):
        if number not in self.ports:
            self.ports[number] = free_port()
        return self.ports[number]

    def substitute(self, text):
        text = text.replace("localhost:9092", self.env.kafka)
        text = text.replace("mongodb://localhost:27017/?replicaSet=rs0", self.env.mongo)
        text = re.sub(r"127\.0\.0\.1:(\d{4})\b", lambda m: f"127.0.0.1:{self.port(m.group(1))}", text)
        text = re.sub(r"\bshop\b", self.db, text)
        return text.replace("bin/mongorelay", self.binary)

    def block(self, name, timeout_s):
        """Runs block name and returns what it printed; a failure shows the block and its output."""
        lang, text = quickstarts()[name]
        text = self.substitute(text)
        argv = ["bash", "-euo", "pipefail", "-c", text] if lang == "sh" else [sys.executable, "-c", text]
        out_path = self.workdir / f"{name}.out"
        with open(out_path, "wb") as out:
            # A session of its own: what the block leaves running in the background is killed
            # with its process group at the end of the test. Output goes to a file, not a pipe,
            # which a background process would hold open.
            proc = subprocess.Popen(argv, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            self.groups.append(proc.pid)
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                code = f"timed out after {timeout_s}s"
        output = out_path.read_text(errors="replace")
        if code != 0:
            logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.workdir.glob("*.log"))
            raise AssertionError(f"README block {name} exited {code}:\n{text}\n--- output\n{output}\n{logs}")
        return output

    def stop(self):
        for pgid in reversed(self.groups):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def readme(env, mongo, relay_binary, tmp_path):
    run = Run(env, relay_binary, tmp_path)
    yield run
    run.stop()
    mongo.drop_database(run.db)
    delete_topics(env.kafka, [t for t in existing_topics(env.kafka) if run.db in t])


def test_every_quick_start_block_is_marked():
    assert set(quickstarts()) == {"standalone", "read", "cluster", "register", "confluent"}, \
        f"the README's marked blocks changed: {sorted(quickstarts())}; update this test with them"


def _write(readme, mongo):
    """Writes a document as the README says (with mongosh there)."""
    mongo[readme.db]["orders"].insert_one({"item": "book", "qty": 1})


def _read_one(readme):
    """Reads the first change back as the README says."""
    lines = [json.loads(line) for line in readme.block("read", 60).splitlines() if line.startswith("{")]
    # A collection the connector finds after it started is copied first: the document may come
    # as a snapshot read (r) or as an insert (c), whichever reached it first.
    assert lines and lines[0]["value"]["op"] in ("c", "r") and lines[0]["value"]["after"]["item"] == "book", lines


def test_standalone_quick_start(readme, mongo):
    status = json.loads(readme.block("standalone", 60).strip().splitlines()[-1])
    assert status["name"] == "orders" and status["connector"]["state"] == "RUNNING", status
    _write(readme, mongo)
    _read_one(readme)


def test_cluster_quick_start(readme, mongo):
    readme.block("cluster", 90)
    _write(readme, mongo)  # the user's collection, with its data, exists before the connector
    cluster = json.loads(readme.block("register", 90).strip().splitlines()[-1])
    assert sorted(n["id"] for n in cluster["nodes"]) == ["n1", "n2", "n3"] and cluster["leader"], cluster
    assert len([a for a in cluster["assignments"] if a["connector"] == "orders"]) == 2, cluster
    _read_one(readme)
    printed = readme.block("confluent", 60)
    assert printed[:2] in ("c ", "r ") and "book" in printed, printed
