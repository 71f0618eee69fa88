"""Python evaluators and generators in the engine's loop; errors before any call."""

import threading

import pytest

from metaprompt import BasicDataMapper, Generator, MetaPromptOptimizer, OpenAIGenerator

PROMPT = "Is this message spam or ham? Answer with one word.\n\n{text}"
MAPPER = BasicDataMapper(key_map={"response": "generated_output", "expected_response": "label"})


class KeywordStudent(Generator):
    """A student written in Python: spam when the message has a spam word."""

    model_id = "keywords-v1"

    def __init__(self):
        self.calls = 0
        self.lock = threading.Lock()

    def generate(self, messages):
        with self.lock:
            self.calls += 1
        text = messages[-1]["content"].lower()
        spam = any(w in text for w in ("free", "winner", "prize", "call", "claim", "txt"))
        return "spam" if spam else "ham"


def test_a_python_evaluator_callable_scores_in_batches(mock, sms_rows):
    batches = []

    def exact(outputs, rows):
        batches.append(len(outputs))
        return [
            (1.0, "match") if o.strip().lower() == r["expected_response"] else (0.0, "differs")
            for o, r in zip(outputs, rows)
        ]

    opt = MetaPromptOptimizer(
        teacher_generator=OpenAIGenerator(model="gpt-4o", base_url=mock.base_url),
        generator=OpenAIGenerator(model="gpt-4o-mini", base_url=mock.base_url),
    )
    result = opt.optimize(
        evaluator=exact,
        data_mapper=MAPPER,
        dataset=sms_rows,
        initial_prompts=[PROMPT],
        num_rounds=2,
        eval_subset_size=12,
        progress=False,
    )
    assert batches and max(batches) > 1, batches
    assert 0.0 <= result.initial_score <= 1.0
    assert result.final_score >= result.initial_score


def test_a_python_generator_subclass_is_the_student(mock, sms_rows):
    student = KeywordStudent()
    opt = MetaPromptOptimizer(
        teacher_generator=OpenAIGenerator(model="gpt-4o", base_url=mock.base_url),
        generator=student,
    )
    from metaprompt import Evaluator

    result = opt.optimize(
        evaluator=Evaluator("exact_match", normalize=True),
        data_mapper=MAPPER,
        dataset=sms_rows,
        initial_prompts=[PROMPT],
        num_rounds=1,
        eval_subset_size=12,
        progress=False,
    )
    assert student.calls >= 12
    assert mock.stats()["student"] == 0, "the student is the Python object, not the server"
    assert result.initial_score > 0.5


def test_a_bad_key_map_raises_value_error_before_any_call(mock, sms_rows):
    student = KeywordStudent()
    opt = MetaPromptOptimizer(
        teacher_generator=OpenAIGenerator(model="gpt-4o", base_url=mock.base_url),
        generator=student,
    )
    from metaprompt import Evaluator

    with pytest.raises(ValueError, match="nonexistent"):
        opt.optimize(
            evaluator=Evaluator("exact_match"),
            data_mapper=BasicDataMapper(
                key_map={"response": "generated_output", "expected_response": "nonexistent"}
            ),
            dataset=sms_rows,
            initial_prompts=[PROMPT],
            progress=False,
        )
    assert student.calls == 0
    assert mock.stats()["requests"] == 0


def test_bad_input_is_a_value_error(mock, sms_rows):
    opt = MetaPromptOptimizer(
        teacher_generator=OpenAIGenerator(model="gpt-4o", base_url=mock.base_url),
        no_such_knob=3,
    )
    from metaprompt import Evaluator

    with pytest.raises(ValueError, match="no_such_knob"):
        opt.optimize(Evaluator("exact_match"), MAPPER, sms_rows, [PROMPT], progress=False)
    with pytest.raises(ValueError, match="unknown variant|kind"):
        MetaPromptOptimizer(teacher_generator=OpenAIGenerator(model="m", base_url=mock.base_url)).optimize(
            Evaluator("no_such_metric"), MAPPER, sms_rows, [PROMPT], progress=False
        )
    with pytest.raises(ValueError, match="row 2"):
        opt.optimize(Evaluator("exact_match"), MAPPER, [{"text": "a"}, 3], [PROMPT])
    assert mock.stats()["requests"] == 0
