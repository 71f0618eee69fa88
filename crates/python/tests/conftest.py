"""Fixtures: the project's mock OpenAI-compatible server on 127.0.0.1, and the SMS data."""

import json
import os
import pathlib
import socket
import subprocess
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
KEY = "sk-test-python-0123456789"


def _mock_binary() -> str:
    explicit = os.environ.get("METAPROMPT_MOCK")
    if explicit:
        return explicit
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    path = pathlib.Path(target) / "debug" / "metaprompt-mock"
    if not path.exists():
        subprocess.run(
            ["cargo", "build", "-q", "-p", "metaprompt-mock"], cwd=ROOT, check=True
        )
    return str(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mock:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base_url.rsplit("/v1", 1)[0] + "/stats") as r:
            return json.loads(r.read())


@pytest.fixture()
def mock(monkeypatch):
    port = _free_port()
    proc = subprocess.Popen(
        [_mock_binary(), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/stats").read()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("the mock server did not start")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    try:
        yield Mock(base + "/v1")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture()
def sms_rows():
    path = ROOT / "examples" / "data" / "sms.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


PROMPT = "Is this message spam or ham? Answer with one word.\n\n{text}"


def run_sms(optimizer, rows, run_dir=None, num_rounds=1, eval_subset_size=12):
    """One short run of `optimizer` on the SMS rows, scored by exact match."""
    from metaprompt import BasicDataMapper, Evaluator

    return optimizer.optimize(
        evaluator=Evaluator("exact_match", normalize=True),
        data_mapper=BasicDataMapper(
            key_map={"response": "generated_output", "expected_response": "label"}
        ),
        dataset=rows,
        initial_prompts=[PROMPT],
        num_rounds=num_rounds,
        eval_subset_size=eval_subset_size,
        run_dir=run_dir,
        progress=False,
    )
