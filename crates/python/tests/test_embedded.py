"""`LlamaGenerator`: the embedded default in-process (the ``embedded`` wheel), and the plain
wheel's clear refusal of it."""

import metaprompt
import pytest

from metaprompt import LlamaGenerator, MetaPromptOptimizer, OpenAIGenerator
from conftest import run_sms


def _optimize(mock, rows, student, run_dir):
    opt = MetaPromptOptimizer(
        teacher_generator=OpenAIGenerator(model="gpt-4o", base_url=mock.base_url),
        generator=student,
    )
    return run_sms(opt, rows, run_dir, eval_subset_size=8)


@pytest.mark.skipif(metaprompt.EMBEDDED, reason="this wheel has the embedded provider")
def test_the_plain_wheel_refuses_llama_before_any_call(mock, sms_rows, tmp_path):
    with pytest.raises(ValueError, match="no embedded model.*--features embedded"):
        _optimize(mock, sms_rows, LlamaGenerator(), tmp_path)
    assert mock.stats()["teacher"] == 0


@pytest.mark.skipif(not metaprompt.EMBEDDED, reason="the plain wheel has no embedded provider")
def test_the_embedded_student_runs_in_process(mock, sms_rows, tmp_path):
    result = _optimize(mock, sms_rows[:24], LlamaGenerator(), tmp_path)
    stats = mock.stats()
    assert stats["student"] == 0, "the student is llama.cpp in this process, not the server"
    assert stats["teacher"] > 0
    assert 0.0 <= result.initial_score <= 1.0
    assert result.usage["student_calls"] > 0, result.usage
    assert result.history and result.best_generator.get_prompt_template()


@pytest.mark.skipif(not metaprompt.EMBEDDED, reason="the plain wheel has no embedded provider")
def test_a_missing_model_file_is_a_value_error(mock, sms_rows, tmp_path):
    missing = tmp_path / "nowhere.gguf"
    with pytest.raises(ValueError, match="nowhere.gguf"):
        _optimize(mock, sms_rows, LlamaGenerator(model_path=str(missing)), tmp_path / "run")
    assert mock.stats()["teacher"] == 0
