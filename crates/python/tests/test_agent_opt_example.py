"""agent-opt's Meta-Prompt example with only the import line and the endpoints changed."""

from metaprompt import BasicDataMapper, Evaluator, MetaPromptOptimizer, OpenAIGenerator


def test_the_agent_opt_example_runs_and_improves(mock, sms_rows, capsys):
    dataset = sms_rows
    teacher = OpenAIGenerator(model="gpt-4o", base_url=mock.base_url)
    optimizer = MetaPromptOptimizer(
        teacher_generator=teacher,
        generator=OpenAIGenerator(model="gpt-4o-mini", base_url=mock.base_url),
    )
    result = optimizer.optimize(
        evaluator=Evaluator("exact_match", normalize=True),
        data_mapper=BasicDataMapper(
            key_map={"response": "generated_output", "expected_response": "label"}
        ),
        dataset=dataset,
        initial_prompts=["Is this message spam or ham? Answer with one word.\n\n{text}"],
        task_description="Decide whether an SMS message is spam.",
        num_rounds=5,
        eval_subset_size=40,
        label_fields=["label"],
        progress=False,
    )
    print(f"Best score:  {result.final_score:.4f}")
    print(f"Best prompt: {result.best_generator.get_prompt_template()}")

    out = capsys.readouterr().out
    assert "Best prompt: " in out
    assert result.final_score > result.initial_score
    prompt = result.best_generator.get_prompt_template()
    assert "{text}" in prompt and prompt != result.initial_generator.get_prompt_template()
    assert result.history, "the history lists every round's children"
    assert {"round", "hypothesis", "accepted"} <= set(result.history[0])
    assert result.test_delta is not None and "ci95" in result.test_delta
    assert result.verdict
    stats = mock.stats()
    assert stats["teacher"] >= 1 and stats["student"] >= 1
