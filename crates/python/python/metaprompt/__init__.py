"""Reflective prompt optimization with agent-opt's interface.

A teacher model studies where your prompt fails, states a hypothesis and rewrites the prompt;
a rewrite is kept only when it wins on held-out data. The engine is metaprompt's own (Rust):
concurrent, cached, budgeted, checkpointed and resumable; this module gives it the names
agent-opt users know::

    from metaprompt import MetaPromptOptimizer, OpenAIGenerator, Evaluator, BasicDataMapper

    teacher = OpenAIGenerator(model="gpt-4o")
    optimizer = MetaPromptOptimizer(teacher_generator=teacher,
                                    generator=OpenAIGenerator(model="gpt-4o-mini"))
    result = optimizer.optimize(
        evaluator=Evaluator("exact_match", normalize=True),
        data_mapper=BasicDataMapper(key_map={"response": "generated_output",
                                             "expected_response": "label"}),
        dataset=rows,
        initial_prompts=["Is this message spam or ham? Answer with one word.\\n\\n{text}"],
        task_description="Decide whether an SMS message is spam.",
    )
    print(result.final_score, result.verdict)
    print(result.best_generator.get_prompt_template())
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _native

__all__ = [
    "EMBEDDED",
    "AnthropicGenerator",
    "BasicDataMapper",
    "Evaluator",
    "Generator",
    "LlamaGenerator",
    "MetaPromptOptimizer",
    "OpenAIGenerator",
    "OptimizationResult",
    "PromptGenerator",
    "__version__",
    "score",
]

__version__ = _native.version()
#: True in the ``embedded`` build, whose ``LlamaGenerator`` runs a GGUF model in-process.
EMBEDDED: bool = _native.embedded()


class Generator:
    """A model the optimizer calls. Subclass it and implement ``generate``.

    ``generate(messages)`` receives a list of ``{"role": ..., "content": ...}`` dicts and
    returns the reply text. It is called from the engine's threads with the interpreter
    taken only for the call. Set ``model_id`` to tell two generators' caches apart.
    """

    model_id: Optional[str] = None

    def generate(self, messages: List[Dict[str, str]]) -> str:
        raise NotImplementedError("a Generator subclass implements generate(messages) -> str")


class _Builtin(Generator):
    """A generator the engine runs natively (no Python in the loop)."""

    _fields: Tuple[str, ...] = ()
    _provider = ""

    def _spec(self) -> str:
        spec = {"provider": self._provider}
        spec.update({k: getattr(self, k) for k in self._fields})
        return json.dumps(spec)

    def generate(self, messages: List[Dict[str, str]]) -> str:
        raise NotImplementedError(
            f"{type(self).__name__} is called by the optimizer's engine, not from Python"
        )

    def __repr__(self) -> str:
        # Only names: a key is read from its environment variable by the engine, never kept.
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._fields)
        return f"{type(self).__name__}({args})"


class OpenAIGenerator(_Builtin):
    """An OpenAI-compatible endpoint (OpenAI, Azure's v1 endpoint, vLLM, Ollama, …).

    The key is read from the environment variable ``api_key_env`` when the run starts.

    ``batch=True`` lets the student's whole-split scoring (the baseline, val, test) go to the
    endpoint's Batch API, at its batch price: when the optimizer's ``batch`` knob is
    ``"auto"`` (the default, from ``batch_min_calls`` uncached calls) or ``"always"``.
    Rounds' minibatches stay live calls.
    """

    _provider = "openai"
    _fields = ("model", "base_url", "api_key_env", "timeout", "max_concurrency", "batch")

    def __init__(
        self,
        model: str,
        base_url: Optional[str] = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: Optional[float] = None,
        max_concurrency: Optional[int] = None,
        batch: bool = False,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self.batch = bool(batch)


class AnthropicGenerator(OpenAIGenerator):
    """Anthropic's Messages API; the key comes from ``api_key_env``."""

    _provider = "anthropic"
    _fields = ("model", "base_url", "api_key_env", "timeout", "max_concurrency")

    def __init__(
        self,
        model: str,
        base_url: Optional[str] = None,
        api_key_env: str = "ANTHROPIC_API_KEY",
        timeout: Optional[float] = None,
        max_concurrency: Optional[int] = None,
    ) -> None:
        super().__init__(model, base_url, api_key_env, timeout, max_concurrency)


class LlamaGenerator(_Builtin):
    """The embedded default: a GGUF model run in-process by llama.cpp (``embedded`` wheels).

    Without ``model_path`` the engine uses ``METAPROMPT_MODEL`` or fetches SmolLM2-135M.
    """

    _provider = "llama"
    _fields = ("model_path",)

    def __init__(self, model_path: Optional[str] = None) -> None:
        self.model_path = model_path


class Evaluator:
    """A built-in evaluator by kind and options, e.g. ``Evaluator("exact_match",
    normalize=True)`` or ``Evaluator("judge", criteria="...")`` (the options are those of
    the config reference's ``[evaluator]`` table).

    For your own metric pass a callable to ``optimize(evaluator=...)`` instead:
    ``fn(outputs: list[str], rows: list[dict]) -> list[float | (float, str)]``, called once
    per batch; ``rows`` are the data mapper's view of each row (``expected_response`` …).

    FutureAGI's templates as agent-opt names them: ``Evaluator(eval_template="summary_quality",
    eval_model_name="turing_flash")``, the keys read from ``FI_API_KEY`` and ``FI_SECRET_KEY``
    (or the variables named by ``api_key_env`` / ``secret_key_env``) when the run starts.
    """

    def __init__(
        self,
        kind: Optional[str] = None,
        *,
        eval_template: Optional[str] = None,
        eval_model_name: Optional[str] = None,
        fi_api_key: Optional[str] = None,
        fi_secret_key: Optional[str] = None,
        **options: Any,
    ) -> None:
        if fi_api_key is not None or fi_secret_key is not None:
            # Never kept on an object (it would reach reprs, logs and pickles).
            raise ValueError(
                "pass FutureAGI's keys through the environment: FI_API_KEY and FI_SECRET_KEY "
                "(or name other variables with api_key_env= and secret_key_env=)"
            )
        if eval_template is not None:
            if kind not in (None, "futureagi"):
                raise ValueError("give a kind or an eval_template, not both")
            kind = "futureagi"
            options["template"] = eval_template
            if eval_model_name is not None:
                options["model"] = eval_model_name
        if not isinstance(kind, str) or not kind:
            raise ValueError("Evaluator(kind, **options): kind is a name such as 'exact_match'")
        self.kind = kind
        self.options = options

    def _spec(self) -> str:
        return json.dumps({"kind": self.kind, **self.options})

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"Evaluator({self.kind!r}{opts})"


class BasicDataMapper:
    """Maps the evaluator's keys to dataset fields; ``"generated_output"`` is the student's
    answer: ``BasicDataMapper(key_map={"response": "generated_output", "expected_response":
    "label"})``. Checked against the dataset before any call."""

    def __init__(self, key_map: Dict[str, str]) -> None:
        if not isinstance(key_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in key_map.items()
        ):
            raise ValueError("key_map must be a dict of str to str")
        self.key_map = dict(key_map)

    def __repr__(self) -> str:
        return f"BasicDataMapper(key_map={self.key_map!r})"


class PromptGenerator:
    """The best (or initial) prompt, as agent-opt's ``best_generator``."""

    def __init__(self, template: str, messages: List[Dict[str, str]]) -> None:
        self._template = template
        self.messages = messages

    def get_prompt_template(self) -> str:
        return self._template

    def __repr__(self) -> str:
        return f"PromptGenerator({self._template!r})"


class OptimizationResult:
    """What a run found: scores, the best prompt, the full history and an honest verdict.

    ``final_score`` is the best prompt's val score; ``test_delta`` is best − initial on the
    held-out test rows with its 95% interval (``None`` without a test split); ``verdict``
    says in words whether the gain is real. ``document`` is ``result.json`` itself.
    """

    def __init__(self, doc: Dict[str, Any]) -> None:
        self.document = doc
        self.run_id: str = doc.get("run_id", "")
        self.final_score: float = doc["final_score"]
        self.initial_score: float = doc["initial_score"]
        self.test_score: Optional[float] = doc.get("test_score")
        self.initial_test_score: Optional[float] = doc.get("initial_test_score")
        self.test_delta: Optional[Dict[str, Any]] = doc.get("test_delta")
        self.verdict: str = doc.get("verdict", "")
        self.history: List[Dict[str, Any]] = doc.get("rounds", [])
        self.usage: Dict[str, Any] = doc.get("usage", {})
        self.best_prompt: str = doc["best_prompt"]
        self.best_generator = PromptGenerator(doc["best_prompt"], doc.get("best_messages", []))
        self.initial_generator = PromptGenerator(
            doc.get("initial_prompt", ""), doc.get("initial_messages", [])
        )

    def __repr__(self) -> str:
        return (
            f"OptimizationResult(final_score={self.final_score:.3f}, "
            f"initial_score={self.initial_score:.3f}, verdict={self.verdict!r})"
        )


_Scores = Sequence[Union[float, Tuple[float, str]]]
EvaluatorLike = Union[Evaluator, Callable[[List[str], List[Dict[str, Any]]], _Scores]]


def _rows(dataset: Any) -> Tuple[Optional[List[Dict[str, Any]]], Optional[str]]:
    """A dataset as rows (list of dicts, or anything with ``to_dict("records")``) or a path."""
    if isinstance(dataset, (str, os.PathLike)):
        return None, os.fspath(dataset)
    if hasattr(dataset, "to_dict"):
        dataset = dataset.to_dict("records")
    if not isinstance(dataset, list):
        try:
            dataset = list(dataset)
        except TypeError:
            raise ValueError(
                "dataset: give a list of dicts, a path (JSONL, JSON or CSV) or a DataFrame"
            ) from None
    for i, row in enumerate(dataset):
        if not isinstance(row, dict):
            raise ValueError(f"dataset: row {i + 1} is a {type(row).__name__}, not a dict")
    # Through JSON: the engine sees exactly what a JSONL file of these rows would hold.
    try:
        return json.loads(json.dumps(dataset, default=str)), None
    except (TypeError, ValueError) as e:
        raise ValueError(f"dataset: rows must be JSON-like: {e}") from None


def score(
    evaluator: EvaluatorLike,
    outputs: Sequence[str],
    rows: Sequence[Dict[str, Any]],
    batch_size: int = 40,
) -> List[Tuple[float, str]]:
    """Scores ``outputs`` with an evaluator as a run does (in batches of ``batch_size``).

    ``rows`` are the evaluator's view of each row (``{"expected_response": ...}``); each
    output is given to it as ``response``. Returns ``(score, reason)`` per output.
    """
    if len(outputs) != len(rows):
        raise ValueError(f"{len(outputs)} outputs for {len(rows)} rows")
    items = [dict(r, response=o) for o, r in zip(outputs, rows)]
    results, _seconds = _native.score(evaluator, json.dumps(items), batch_size)
    return results


class MetaPromptOptimizer:
    """The Meta-Prompt optimizer.

    ``teacher_generator`` writes the rewrites; ``generator`` (the student) answers with each
    candidate prompt and defaults to the teacher. Every other keyword is an ``[optimizer]``
    knob of the config reference (``proposals_per_round``, ``mutations``, ``max_calls`` …),
    checked when ``optimize`` is called. ``teacher_temperature``, ``teacher_max_tokens``
    and ``student_temperature``, ``student_max_tokens`` set the sampling.
    """

    def __init__(
        self,
        teacher_generator: Generator,
        generator: Optional[Generator] = None,
        *,
        teacher_temperature: Optional[float] = None,
        teacher_max_tokens: Optional[int] = None,
        student_temperature: Optional[float] = 0.0,
        student_max_tokens: Optional[int] = None,
        **knobs: Any,
    ) -> None:
        self.teacher_generator = teacher_generator
        self.generator = generator
        self.knobs = knobs
        self._teacher = {
            k: v
            for k, v in (("temperature", teacher_temperature), ("max_tokens", teacher_max_tokens))
            if v is not None
        }
        self._student = {"temperature": student_temperature, "max_tokens": student_max_tokens}

    def optimize(
        self,
        evaluator: EvaluatorLike,
        data_mapper: BasicDataMapper,
        dataset: Any,
        initial_prompts: Sequence[Union[str, List[Dict[str, str]]]],
        task_description: str = "I want to improve my prompt.",
        num_rounds: int = 5,
        eval_subset_size: int = 40,
        *,
        generator: Optional[Generator] = None,
        label_fields: Iterable[str] = (),
        id_field: Optional[str] = None,
        split: Tuple[float, float, float] = (0.5, 0.25, 0.25),
        seed: int = 7,
        stratify_by: Optional[str] = None,
        run_dir: Optional[Union[str, os.PathLike]] = None,
        progress: bool = True,
    ) -> OptimizationResult:
        """Runs the optimization and returns its result.

        With ``run_dir`` the run keeps its cache, checkpoints and ``result.json`` there, and
        calling ``optimize`` again with the same ``run_dir`` after an interruption (Ctrl-C
        raises ``KeyboardInterrupt`` once the checkpoint is saved) resumes it without paying
        for any call twice. ``label_fields`` are fields the prompt must never read.
        """
        if not isinstance(data_mapper, BasicDataMapper):
            raise ValueError("data_mapper must be a BasicDataMapper(key_map={...})")
        if isinstance(initial_prompts, str):
            initial_prompts = [initial_prompts]
        rows, path = _rows(dataset)
        try:
            train, val, test = split
        except (TypeError, ValueError):
            raise ValueError("split is (train, val, test) fractions, e.g. (0.5, 0.25, 0.25)") from None
        config = dict(self.knobs)
        config.update(num_rounds=num_rounds, eval_subset_size=eval_subset_size)
        config.setdefault("seed", seed)
        request = {
            "config": config,
            "teacher": self._teacher,
            "student": self._student,
            "rows": rows,
            "path": path,
            "id_field": id_field,
            "label_fields": list(label_fields),
            "key_map": data_mapper.key_map,
            "split": {
                "train": train,
                "val": val,
                "test": test,
                "seed": seed,
                "stratify_by": stratify_by,
            },
            "initial_prompts": list(initial_prompts),
            "task_description": task_description,
            "run_dir": os.fspath(run_dir) if run_dir is not None else None,
            "progress": bool(progress),
        }
        student = generator or self.generator or self.teacher_generator
        text = _native.optimize(
            json.dumps(request), student, self.teacher_generator, evaluator
        )
        return OptimizationResult(json.loads(text))
