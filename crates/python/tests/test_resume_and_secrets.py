"""Resume after an interruption repeats no call; secrets stay out of reprs, errors and files."""

import os
import signal
import time

import pytest

from metaprompt import BasicDataMapper, Evaluator, MetaPromptOptimizer, OpenAIGenerator
from conftest import KEY

PROMPT = "Is this message spam or ham? Answer with one word.\n\n{text}"
MAPPER = BasicDataMapper(key_map={"response": "generated_output", "expected_response": "label"})


def _optimizer(mock):
    return MetaPromptOptimizer(
        teacher_generator=OpenAIGenerator(model="gpt-4o", base_url=mock.base_url),
        generator=OpenAIGenerator(model="gpt-4o-mini", base_url=mock.base_url),
        concurrency=4,
    )


def _exact(outputs, rows):
    return [float(o.strip().lower() == r["expected_response"]) for o, r in zip(outputs, rows)]


def test_resume_after_an_interruption_makes_no_repeated_call(mock, sms_rows, tmp_path):
    kwargs = dict(
        data_mapper=MAPPER,
        dataset=sms_rows,
        initial_prompts=[PROMPT],
        num_rounds=4,
        eval_subset_size=12,
        progress=False,
    )
    calls = {"n": 0}

    def interrupting(outputs, rows):
        calls["n"] += 1
        if calls["n"] == 4:  # mid-run: after the baseline and a round's first scoring
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # the main thread sees Ctrl-C while this batch is in flight
        return _exact(outputs, rows)

    run_dir = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        _optimizer(mock).optimize(evaluator=interrupting, run_dir=run_dir, **kwargs)
    assert (run_dir / "run_id").exists() and not (run_dir / "result.json").exists()
    resumed = _optimizer(mock).optimize(evaluator=_exact, run_dir=run_dir, **kwargs)
    cut = mock.stats()
    assert (run_dir / "result.json").exists()
    assert cut["repeated_student"] == 0 and cut["repeated_teacher"] == 0, cut

    # The uninterrupted run (its own cache) makes exactly the calls the two halves made.
    whole = _optimizer(mock).optimize(evaluator=_exact, run_dir=tmp_path / "whole", **kwargs)
    both = mock.stats()
    assert both["student"] - cut["student"] == cut["student"]
    assert both["teacher"] - cut["teacher"] == cut["teacher"]
    assert resumed.best_prompt == whole.best_prompt
    assert resumed.final_score == whole.final_score
    assert resumed.history == whole.history
    assert resumed.run_id == (run_dir / "run_id").read_text().strip()


def test_secrets_never_appear_in_reprs_errors_or_run_files(mock, sms_rows, tmp_path, monkeypatch):
    gen = OpenAIGenerator(model="gpt-4o", base_url="http://127.0.0.1:9/v1", timeout=2)
    assert KEY not in repr(gen) and KEY not in gen._spec()
    opt = MetaPromptOptimizer(teacher_generator=gen)
    with pytest.raises(RuntimeError) as e:
        opt.optimize(Evaluator("exact_match"), MAPPER, sms_rows, [PROMPT], run_dir=tmp_path, progress=False)
    assert KEY not in str(e.value) and KEY not in repr(e.value)
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        opt.optimize(Evaluator("exact_match"), MAPPER, sms_rows, [PROMPT], progress=False)
