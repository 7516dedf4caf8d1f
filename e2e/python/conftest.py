"""Fixtures of the end-to-end suite: the servers, the mongorelay binary, and per-test pipelines.

Run with the test environment up (`make env-up`, then `. .cache/env/env.sh`):

    $MONGORELAY_TEST_PYTHON -m pytest e2e/python -q

Outside CI the tests skip when MONGORELAY_TEST_KAFKA or MONGORELAY_TEST_MONGO is unset; under
CI=true they fail instead, as the Go tests do (internal/testenv). The binary is built once per
session without -race (MONGORELAY_E2E_BINARY names a prebuilt one instead); a build that lacks
`standalone` fails every test that needs it with one clear message, while the tests of the
suite's own helpers still run.
"""
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymongo import MongoClient

from kafka_io import delete_topics, existing_topics
from pipeline import Pipeline
from processes import Process

REPO = Path(__file__).resolve().parents[2]
PROCESSES = pytest.StashKey[list]()


@dataclass(frozen=True)
class Env:
    kafka: str
    mongo: str


def _require(name):
    value = os.environ.get(name)
    if value:
        return value
    message = f"{name} is not set: run `make env-up` and `. .cache/env/env.sh`"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: the end-to-end tests must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def env():
    """The shared test servers, checked to answer, so a dead server fails fast and says so."""
    e = Env(kafka=_require("MONGORELAY_TEST_KAFKA"), mongo=_require("MONGORELAY_TEST_MONGO"))
    try:
        existing_topics(e.kafka, timeout_s=10)
    except Exception as err:
        pytest.fail(f"Kafka at {e.kafka} does not answer ({err}): run `make env-up`")
    with MongoClient(e.mongo, serverSelectionTimeoutMS=10000) as client:
        try:
            client.admin.command("ping")
        except Exception as err:
            pytest.fail(f"MongoDB at {e.mongo} does not answer ({err}): run `make env-up`")
    return e


@pytest.fixture(scope="session")
def mongo(env):
    with MongoClient(env.mongo, serverSelectionTimeoutMS=10000, socketTimeoutMS=120000) as client:
        yield client


@pytest.fixture(scope="session")
def relay_binary(tmp_path_factory):
    """mongorelay built from this work tree (once per session, no -race: processes run at speed),
    or the prebuilt binary named by MONGORELAY_E2E_BINARY (a release build, say)."""
    binary = os.environ.get("MONGORELAY_E2E_BINARY")
    if binary:
        return _require_standalone(binary)
    binary = tmp_path_factory.mktemp("bin") / "mongorelay"
    try:
        build = subprocess.run(["go", "build", "-o", str(binary), "./cmd/mongorelay"], cwd=REPO,
                               capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.fail("go build ./cmd/mongorelay took over 10 minutes")
    if build.returncode != 0:
        pytest.fail(f"go build ./cmd/mongorelay failed:\n{build.stdout}{build.stderr}")
    return _require_standalone(str(binary))


def _require_standalone(binary):
    usage = subprocess.run([binary, "help"], capture_output=True, text=True, timeout=30)
    if "standalone" not in usage.stdout + usage.stderr:
        pytest.fail(f"{binary} has no `standalone` subcommand yet (the standalone pipeline, issue 4, is "
                    f"not in this build); `mongorelay help` says:\n{usage.stdout}{usage.stderr}")
    return binary


@pytest.fixture
def processes(request):
    """The processes a test starts; all are killed when it ends, and their logs join a failure's report."""
    started = []
    request.node.stash[PROCESSES] = started
    yield started
    for process in reversed(started):
        process.kill()


@pytest.fixture
def pipeline(env, mongo, relay_binary, processes, tmp_path):
    """A fresh pipeline setup for one test; its database and topics are removed afterwards."""
    p = Pipeline(binary=relay_binary, kafka=env.kafka, mongo_uri=env.mongo, workdir=tmp_path,
                 processes=processes)
    yield p
    for process in reversed(processes):
        process.kill()
    mongo.drop_database(p.db)
    delete_topics(env.kafka, p.written_topics())


@pytest.fixture
def kafka_libs():
    """The directory of the Kafka jars (Connect's JsonConverter among them)."""
    return _require("MONGORELAY_TEST_KAFKA_LIBS")


@pytest.fixture
def mongo_jar():
    return _require("MONGORELAY_TEST_MONGO_JAR")


@pytest.fixture
def private_mongo(mongo_jar, processes, tmp_path):
    """Starts a private MongoDB stand-in with its own oplog bound and, given users ("name:password"
    each), authentication on; returns its connection string (without credentials)."""
    def start(oplog_max_entries=1_000_000, users=()):
        process = Process(f"mongo-standin-{len(processes)}", [
            "java", "-Xms64m", "-Xmx512m", "-jar", mongo_jar, "--bind", "127.0.0.1", "--port", "0",
            "--oplog-max-entries", str(oplog_max_entries), *(arg for user in users for arg in ("--user", user))], tmp_path)
        processes.append(process)
        line = process.wait_for_line(r"mongo-standin listening on 127\.0\.0\.1:\d+", timeout_s=60)
        port = re.search(r"127\.0\.0\.1:(\d+)", line).group(1)
        return f"mongodb://127.0.0.1:{port}/?directConnection=true"
    return start


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attaches the end of every process log to the report of a failed test."""
    report = yield
    if report.failed and call.when in ("setup", "call"):
        for process in item.stash.get(PROCESSES, []):
            report.sections.append((f"log of {process.name}", process.tail()))
    return report


def pytest_terminal_summary(terminalreporter):
    """Shows every test's recorded figures (seeds, duplicates after kill -9, ...) in the output."""
    lines = [f"{report.nodeid}: " + ", ".join(f"{k}={v}" for k, v in report.user_properties)
             for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "when", None) == "call" and getattr(report, "user_properties", None)]
    if lines:
        terminalreporter.section("mongorelay e2e figures")
        for line in lines:
            terminalreporter.write_line(line)
