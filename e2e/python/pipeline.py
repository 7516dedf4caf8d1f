"""One test's `mongorelay standalone` setup: the names it writes under, and how to run it.

Every test gets its own database, topic prefix, offsets topic, schemas topic, connector name and
registry port, so tests (and earlier runs) never see each other's state. A restart reuses them
all, as an operator restarting the service would.
"""
import json
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from kafka_io import cluster_time, existing_topics, offset_key, read_offsets
from processes import Process


def free_port():
    """A TCP port nothing listens on right now (the kernel's pick), for a server the test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_suffix():
    return time.strftime("%H%M%S") + uuid.uuid4().hex[:6]


@dataclass
class Pipeline:
    binary: str
    kafka: str
    mongo_uri: str
    workdir: Path
    processes: list  # every process started, for the fixture to stop and the report to show
    suffix: str = field(default_factory=unique_suffix)
    registry_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)

    @property
    def name(self):
        return f"e2e-{self.suffix}"

    @property
    def db(self):
        return f"e2e_{self.suffix}"

    @property
    def prefix(self):
        return f"e2e{self.suffix}"

    @property
    def offsets_topic(self):
        return f"e2e-{self.suffix}-offsets"

    @property
    def schemas_topic(self):
        return f"e2e-{self.suffix}-schemas"

    @property
    def registry_url(self):
        return f"http://127.0.0.1:{self.registry_port}"

    @property
    def rest_url(self):
        """The REST API of the process started last (one runs at a time on a pipeline's port)."""
        return f"http://127.0.0.1:{self.http_port}"

    def topic(self, coll):
        return f"{self.prefix}.{self.db}.{coll}"

    def offset_key(self, coll):
        return offset_key(self.name, self.db, coll)

    def connector(self, collections, settings=None):
        """A connector capturing collections of the test's database; settings (a dict of config
        keys) override the defaults."""
        config = {
            "connector.class": "mongodb",
            "mongodb.connection.string": self.mongo_uri,
            "database.include.list": re.escape(self.db),
            "collection.include.list": rf"{re.escape(self.db)}\.({'|'.join(collections)})",
            "topic.prefix": self.prefix,
            "document.mode": "typed",
            "snapshot.mode": "never",
            "offset.lost.policy": "fail",
            "heartbeat.interval.ms": "1000",
        }
        config.update({key: str(value) for key, value in (settings or {}).items()})
        return {"name": self.name, "config": config}

    def start(self, connector, label):
        """Starts `mongorelay standalone` with connector (or a list of connectors, run side by
        side); its log is <label>.log in the workdir."""
        paths = []
        for i, c in enumerate(connector if isinstance(connector, list) else [connector]):
            paths.append(self.workdir / f"{label}.{i}.connector.json")
            paths[-1].write_text(json.dumps(c, indent=2))
        process = Process(label, [
            self.binary, "standalone", "--kafka", self.kafka,
            "--registry-listen", f"127.0.0.1:{self.registry_port}", "--http-listen", f"127.0.0.1:{self.http_port}",
            "--offsets-topic", self.offsets_topic, "--schemas-topic", self.schemas_topic,
            "--log-format", "json", "--log-level", "info", *map(str, paths)], self.workdir)
        self.processes.append(process)
        return process

    def committed(self):
        """The latest offset value per key (None where tombstoned)."""
        return {key: values[-1] for key, values in read_offsets(self.kafka, self.offsets_topic).items()}

    def wait_streaming(self, process, collections, timeout_s=30):
        """Waits until every collection's task has committed a position, and returns them.

        A committed position means the change stream is open: every write the test makes after
        this returns is after that position, so it will be captured (snapshot.mode=never captures
        nothing written before).
        """
        keys = {coll: self.offset_key(coll) for coll in collections}
        positions = self.wait_committed(process, list(keys.values()), timeout_s)
        return {coll: positions[key] for coll, key in keys.items()}

    def wait_committed(self, process, keys, timeout_s=60):
        """Waits until every offsets key has a committed position (its change stream is open),
        and returns the positions by key; fails early if process exits."""
        deadline = time.monotonic() + timeout_s
        while True:
            committed = self.committed()
            positions = {key: cluster_time(committed.get(key)) for key in keys if cluster_time(committed.get(key))}
            if len(positions) == len(keys):
                return positions
            if not process.alive():
                raise AssertionError(f"{process.name} exited with {process.popen.returncode} before "
                                     f"streaming:\n{process.tail()}")
            if time.monotonic() >= deadline:
                missing = [k for k in keys if k not in positions]
                raise AssertionError(
                    f"no committed position for {missing} within {timeout_s} s; "
                    f"keys in {self.offsets_topic}: {sorted(committed)}\n{process.tail()}")
            time.sleep(0.5)

    def written_topics(self):
        """The test's topics that exist in Kafka (its collections' and its own offsets/schemas)."""
        return {t for t in existing_topics(self.kafka)
                if t.startswith(self.prefix + ".") or t in (self.offsets_topic, self.schemas_topic)}
