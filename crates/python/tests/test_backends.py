"""An Anthropic teacher and a FutureAGI evaluator (agent-opt's `eval_template=`) on the mock."""

import pytest

from metaprompt import (
    AnthropicGenerator,
    BasicDataMapper,
    Evaluator,
    MetaPromptOptimizer,
    OpenAIGenerator,
)
from conftest import KEY

FI_KEY = "fi-key-python-0123456789"
FI_SECRET = "fi-secret-python-0123456789"


def test_anthropic_teacher_and_futureagi_evaluator(mock, sms_rows, tmp_path, monkeypatch):
    root = mock.base_url.rsplit("/v1", 1)[0]
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("FI_API_KEY", FI_KEY)
    monkeypatch.setenv("FI_SECRET_KEY", FI_SECRET)
    monkeypatch.delenv("FI_BASE_URL", raising=False)
    evaluator = Evaluator(
        eval_template="ground_truth_match", eval_model_name="turing_flash", base_url=root
    )
    assert FI_KEY not in repr(evaluator) and FI_SECRET not in evaluator._spec()
    optimizer = MetaPromptOptimizer(
        teacher_generator=AnthropicGenerator(model="claude-sonnet-4-5", base_url=root),
        generator=OpenAIGenerator(model="gpt-4o-mini", base_url=mock.base_url),
    )
    result = optimizer.optimize(
        evaluator=evaluator,
        data_mapper=BasicDataMapper(
            key_map={"generated_value": "generated_output", "expected_value": "label"}
        ),
        dataset=sms_rows,
        initial_prompts=["Is this message spam or ham? Answer with one word.\n\n{text}"],
        num_rounds=2,
        eval_subset_size=12,
        run_dir=tmp_path,
        progress=False,
    )
    stats = mock.stats()
    assert stats["futureagi"] > 0 and stats["teacher"] > 0
    assert result.usage["judge_calls"] == stats["futureagi"]
    for f in tmp_path.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert FI_KEY.encode() not in data and FI_SECRET.encode() not in data, f


def test_futureagi_keys_are_refused_as_arguments():
    with pytest.raises(ValueError, match="FI_API_KEY"):
        Evaluator(eval_template="summary_quality", fi_api_key="k", fi_secret_key="s")


def test_a_key_map_that_does_not_fit_the_template_is_a_value_error(mock, sms_rows, monkeypatch):
    monkeypatch.setenv("FI_API_KEY", FI_KEY)
    monkeypatch.setenv("FI_SECRET_KEY", FI_SECRET)
    opt = MetaPromptOptimizer(teacher_generator=OpenAIGenerator("gpt-4o", base_url=mock.base_url))
    with pytest.raises(ValueError, match="ground_truth_match"):
        opt.optimize(
            Evaluator(eval_template="ground_truth_match"),
            BasicDataMapper(key_map={"response": "generated_output", "expected_response": "label"}),
            sms_rows,
            ["Classify: {text}"],
            progress=False,
        )
    assert mock.stats()["requests"] == 0
