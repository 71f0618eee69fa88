"""The student's whole-split scoring on the Batch API (`OpenAIGenerator(batch=True)`)."""

import pytest

from metaprompt import MetaPromptOptimizer, OpenAIGenerator
from conftest import run_sms


def _optimizer(mock, **knobs):
    return MetaPromptOptimizer(
        teacher_generator=OpenAIGenerator(model="gpt-4o", base_url=mock.base_url),
        generator=OpenAIGenerator(model="gpt-4o-mini", base_url=mock.base_url, batch=True),
        batch_poll_secs=0.5,
        **knobs,
    )


def test_whole_splits_go_to_the_batch_api_and_a_rerun_pays_nothing_again(mock, sms_rows, tmp_path):
    result = run_sms(_optimizer(mock, batch="always"), sms_rows, tmp_path)
    first = mock.stats()
    assert first["batches_created"] >= 1 and first["batch_lines"] > 0, first
    assert 0.0 <= result.initial_score <= 1.0 and result.verdict
    # The same run again: every answer is in the run's cache, batch lines included.
    again = run_sms(_optimizer(mock, batch="always"), sms_rows, tmp_path)
    second = mock.stats()
    assert second["batch_lines"] == first["batch_lines"], (first, second)
    assert second["student"] == first["student"], (first, second)
    assert again.final_score == result.final_score


def test_batch_off_keeps_every_call_live(mock, sms_rows, tmp_path):
    run_sms(_optimizer(mock, batch="off"), sms_rows, tmp_path)
    stats = mock.stats()
    assert stats["batches_created"] == 0 and stats["student"] > 0, stats


def test_a_batch_teacher_is_a_value_error_before_any_call(mock, sms_rows, tmp_path):
    opt = MetaPromptOptimizer(
        teacher_generator=OpenAIGenerator(model="gpt-4o", base_url=mock.base_url, batch=True),
        generator=OpenAIGenerator(model="gpt-4o-mini", base_url=mock.base_url),
    )
    with pytest.raises(ValueError, match="batch=True is for the student"):
        run_sms(opt, sms_rows, tmp_path)
    assert mock.stats()["requests"] == 0
