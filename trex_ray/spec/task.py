"""TaskSpec: what the user wants fine-tuned, on what, judged how, within which budget.

Example (YAML)::

    name: tweets
    description: Classify the sentiment of a tweet.
    model: {id: "builtin:smollm2-135m"}     # the default; may be left out
    data:
      train: [{id: "builtin:tweet_sentiment", split: train, limit: 400}]
      eval: {id: "builtin:tweet_sentiment", split: test, limit: 320}   # the test split
    metric: {name: accuracy}
    budget: {max_nodes: 12}
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trex_ray.spec.result import FailureKind
from trex_ray.spec.uri import credentials_error


class Strict(BaseModel):
    """Base for every spec record: unknown keys are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricName(str, Enum):
    accuracy = "accuracy"
    exact_match = "exact_match"
    macro_f1 = "macro_f1"
    rouge1 = "rouge1"
    rougeL = "rougeL"
    # FT-Bench scorers (trex_ray/execute/bench_metrics.py)
    mc_accuracy = "mc_accuracy"
    tool_call_accuracy = "tool_call_accuracy"
    tomg_score = "tomg_score"
    ome_score = "ome_score"
    lawbench_score = "lawbench_score"


DEFAULT_MODEL = "builtin:smollm2-135m"
DEFAULT_MAX_SEQ_LEN = 256  # where no preflight measured the data
DEFAULT_MAX_NEW_TOKENS = 16


class ModelSpec(Strict):
    """The base model: ``builtin:smollm2-135m`` (the default: a real pretrained model shipped in a
    package), ``builtin:tiny-llama`` (random init, for fast tests), a local directory, or a hub id.

    ``max_seq_len``: tokens per training example; None: measured by the preflight (the data's 99th
    percentile), ``DEFAULT_MAX_SEQ_LEN`` where no preflight ran.
    """

    id: str = Field(default=DEFAULT_MODEL, min_length=1)
    revision: str | None = None
    max_seq_len: int | None = Field(default=None, ge=8, le=131072)

    @property
    def kind(self) -> str:
        if self.id.startswith("builtin:"):
            return "builtin"
        if self.id.startswith(("/", "./", "../", "~")) or _exists_locally(self.id):
            return "local"
        return "hub"


class DataSource(Strict):
    """One data source: ``builtin:<task>``, a local file (.jsonl, .json, .parquet, .csv) or folder, or a
    hub dataset id (with its ``config`` and ``revision``).

    ``format`` says how rows become (input, target, system, history): ``text`` reads ``input_field``
    and ``target_field``; ``alpaca`` instruction / input / output / system; ``sharegpt`` a
    ``conversations`` list of {from, value}; ``messages`` a ``messages`` list of {role, content};
    ``auto`` picks by the columns (text when input_field / target_field name other columns).
    ``label_names`` names an int target column's labels (0 is ``label_names[0]``).

    ``id`` may also be an http(s) URL of one data file. ``data_file`` reads one file of a hub dataset
    repo (e.g. ``dataset.json``) instead of its configs. ``convert`` names a conversion of the
    source's own columns into input / target (``trex_ray/ftbench/convert.py``: e.g. ``gta``,
    ``csbench``); ``input_field`` / ``target_field`` / ``format`` are then not read.
    """

    id: str = Field(min_length=1)
    split: str = "train"
    config: str | None = None  # the hub dataset's config (subset) name
    revision: str | None = None  # the hub dataset's branch, tag or commit
    format: Literal["auto", "text", "alpaca", "sharegpt", "messages"] = "auto"
    weight: float = Field(default=1.0, gt=0)
    input_field: str = "input"
    target_field: str = "target"
    label_names: tuple[str, ...] | None = Field(default=None, min_length=1)
    limit: int | None = Field(default=None, ge=1)
    data_file: str | None = None  # one file inside a hub dataset repo, read as records
    convert: str | None = None  # a named conversion of the source's columns (ftbench/convert.py)

    @property
    def kind(self) -> str:
        if self.id.startswith("builtin:"):
            return "builtin"
        if self.id.startswith(("http://", "https://")):
            return "url"
        if self.id.lower().endswith((".jsonl", ".json", ".parquet", ".csv")) or _exists_locally(self.id):
            return "local"
        return "hub"


def _exists_locally(path: str) -> bool:
    try:
        return Path(path).expanduser().exists()
    except (OSError, RuntimeError):  # a name too long for a path; ~user unknown
        return False


class DataSpec(Strict):
    """Three splits: *train* (what trials train on); *validation* (``val_size`` rows cut from the raw
    train data before any data op, the same rows for every recipe, never trained on: what selection,
    early stopping and pruning see); *test* (``eval``, never seen by the search: scored for the base
    model and the nodes ranked best on validation). Without ``eval``, ``test_size`` rows of the train
    data are the test split. Splits are seeded by ``split_seed``."""

    train: list[DataSource] = Field(min_length=1)
    eval: DataSource | None = None  # the test split
    val_size: int | None = Field(default=None, ge=1, le=100_000)  # None: 10 % of train, at most 200
    test_size: int | None = Field(default=None, ge=1, le=1_000_000)  # None: 20 %, at most 1000
    split_seed: int = 0


class MetricSpec(Strict):
    name: MetricName
    higher_is_better: bool = True


class Budget(Strict):
    """When the search stops: whichever limit is reached first."""

    max_nodes: int = Field(default=12, ge=1, le=100_000)
    compute_seconds: float | None = Field(default=None, gt=0)
    wall_seconds: float | None = Field(default=None, gt=0)
    trial_timeout_seconds: float = Field(default=1800, gt=0)
    # A node whose trial was lost (its worker or machine died) or ran past its timeout runs again,
    # up to max_retries times; a raised error or a diverged loss would only fail again.
    max_retries: int = Field(default=1, ge=0, le=10)
    retry_on: tuple[FailureKind, ...] = (FailureKind.lost, FailureKind.timeout)
    # The wait before a retried node runs again: time for Ray to notice a machine that died
    # (its health checks), so that the retry is not placed on it again.
    retry_delay_seconds: float = Field(default=20.0, ge=0)


class Resources(Strict):
    """Resources one trial holds while it trains; ``num_workers`` > 1 is data-parallel DeepSpeed."""

    cpus_per_worker: float = Field(default=1, gt=0)
    gpus_per_worker: float = Field(default=0, ge=0)
    num_workers: int = Field(default=1, ge=1)
    memory_gb_per_worker: float | None = Field(default=None, gt=0)  # Ray's `memory` resource, per worker
    max_concurrent_trials: int | None = Field(default=None, ge=1)
    # How a multi-worker trial's placement group lays out its workers (Ray's strategies).
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    # auto: NCCL when the trial holds GPUs, else gloo. gloo with GPUs suits logical-GPU test clusters.
    dist_backend: Literal["auto", "nccl", "gloo"] = "auto"
    # torch.compile of each decoder layer: true, false, or auto: on GPUs, for trials of 300+ steps
    # (compiling costs tens of seconds once, then each step is faster: +37 % tokens/s at 1B on an H100).
    compile: bool | Literal["auto"] = "auto"
    # Memory. The plan's train.batch_size stays the effective batch: each worker takes
    # batch_size / (num_workers x gradient_accumulation_steps) rows per micro-batch, and the loss is per
    # scored token of the whole batch, so k micro-batches train as one batch k times larger.
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=1024)
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: less memory, slower
    zero_stage: int | None = Field(default=None, ge=0, le=3)  # None: each plan's train.zero_stage
    # ZeRO-Offload to CPU memory: the optimizer state (ZeRO stage >= 1), or it and the parameters (stage 3)
    offload: Literal["none", "optimizer", "all"] = "none"
    # Long trials: a checkpoint every N optimizer steps (Ray Train's), and restarts of a trial's workers
    # when one dies (Ray Train's FailureConfig): the trial goes on from its last checkpoint. With
    # restarts spent, the node is `lost` and the Researcher may retry it (budget.max_retries).
    checkpoint_every_steps: int | None = Field(default=None, ge=1)
    max_worker_failures: int = Field(default=0, ge=0, le=100)

    @model_validator(mode="after")
    def _offload_needs_zero(self) -> Resources:
        need = {"optimizer": 1, "all": 3}.get(self.offload)
        if need is not None and (self.zero_stage is None or self.zero_stage < need):
            raise ValueError(f"resources.offload: {self.offload} offload needs ZeRO stage {need} or more; "
                             f"set resources.zero_stage={max(need, 2) if need == 1 else 3}")
        return self


SearchTool = Literal["notes", "catalog", "arxiv", "hf_hub"]


class LLMSpec(Strict):
    """The LLM Researcher (``search.planner: llm``), reached through litellm.

    API keys never go here: litellm reads them from the environment (``OPENAI_API_KEY`` ...).
    ``max_tokens`` / ``max_dollars`` are budgets for the whole run; when one is spent the
    heuristic planner takes over.
    """

    model: str | None = None  # provider/name, e.g. openai/gpt-4o-mini, ollama/llama3
    api_base: str | None = None  # e.g. http://127.0.0.1:8000/v1 for a self-hosted vLLM
    max_tokens: int | None = Field(default=300_000, ge=1)
    max_dollars: float | None = Field(default=5.0, ge=0)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    max_retries: int = Field(default=3, ge=0, le=10)  # transient errors: timeouts, 429, 5xx
    max_repairs: int = Field(default=2, ge=0, le=5)  # re-asks after an invalid answer
    temperature: float = Field(default=0.2, ge=0, le=2)
    memory_tokens: int = Field(default=800, ge=0, le=100_000)  # insights and findings in a prompt
    notes_dir: str | None = None  # a local folder of papers/notes to search
    search_tools: tuple[SearchTool, ...] = ("notes", "catalog", "arxiv", "hf_hub")

    @field_validator("model")
    @classmethod
    def _provider_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+/\S+", value):
            raise ValueError(f"{value!r} is not provider/name; write e.g. openai/gpt-4o-mini, ollama/llama3")
        return value

    @field_validator("api_base")
    @classmethod
    def _plain_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s@?#]+", value):
            raise ValueError("use an http(s) URL without credentials or query; keys go in the environment "
                             "(e.g. OPENAI_API_KEY)")
        return value


class SearchSpec(Strict):
    """Tree-search knobs; the defaults suit a budget of ten to a hundred nodes."""

    planner: str = "heuristic"
    children_per_expansion: int = Field(default=2, ge=1, le=16)
    exploration: float = Field(default=0.5, ge=0)
    exploration_decay: float = Field(default=0.95, gt=0, le=1)
    widening_c: float = Field(default=2.0, gt=0)
    widening_alpha: float = Field(default=0.5, gt=0, le=1)
    halving_eta: int = Field(default=2, ge=2)
    early_stopping: bool = True  # stop a running trial that is clearly losing to its siblings (ASHA)
    # After the search: the base model and this many best nodes (on validation) are scored on the test split
    test_top_k: int = Field(default=1, ge=0, le=100)
    # Checkpoints kept: the K best nodes' on validation (at least test_top_k), those they build on and
    # those a pending or running warm start needs; others are deleted as the run goes. None: keep all.
    keep_checkpoints: int | None = Field(default=None, ge=1, le=100_000)
    seed: int = 0
    llm: LLMSpec = LLMSpec()  # used when planner is llm

    @model_validator(mode="after")
    def _llm_needs_model(self) -> SearchSpec:
        if self.planner == "llm" and self.llm.model is None:
            raise ValueError(
                "search.llm.model: the llm planner needs a model; set it to provider/name "
                "(e.g. openai/gpt-4o-mini) or pass --model"
            )
        return self


class EvalSpec(Strict):
    """How nodes are evaluated, and how big the evaluation engine may be (never hard-coded).

    ``backend``: ``auto`` — vLLM where it can run (the run's evaluator keeps one engine per base
    model and swaps LoRA adapters in), HF generate where it cannot, or in-process runs without an
    evaluator; ``vllm``; ``hf``; ``openai`` — an OpenAI-compatible server at ``api_base``.
    A plan's own ``eval.backend`` (other than ``auto``) wins over this.
    """

    backend: Literal["auto", "vllm", "hf", "openai"] = "auto"
    num_gpus: float = Field(default=0, ge=0)  # the evaluator actor's GPUs (a fraction shares one with trials)
    gpu_memory_utilization: float = Field(default=0.5, gt=0, le=1)  # of the evaluator's GPU, per engine
    kv_cache_gib: float | None = Field(default=None, gt=0)  # KV cache per engine; None: 1 GiB on CPU
    max_loras: int = Field(default=4, ge=1, le=64)  # adapters in one engine batch
    max_lora_rank: int | None = Field(default=None, ge=1, le=512)  # None: 16, raised by larger adapters
    max_model_len: int | None = Field(default=None, ge=8)  # None: the model's own
    enforce_eager: bool | None = None  # None: eager on CPU, CUDA graphs on GPU
    spare_engine: bool = True  # keep a process with vLLM imported for the next full fine-tune's engine
    start_timeout_s: float = Field(default=900, gt=0)
    api_base: str | None = None  # openai: e.g. http://127.0.0.1:8000/v1 (else $TREX_EVAL_API_BASE)
    api_model: str | None = None  # openai: the served base model's name (else found by its path)


class TrackingSpec(Strict):
    """Experiment records (``execute/tracking.py``): TensorBoard event files per node under the run
    (``RUN_DIR/tensorboard/<node>``), and MLflow runs — one for the search, one nested per node — at
    ``mlflow``: a tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``, ``file:/abs/mlruns``, which
    MLflow 3 allows only with ``MLFLOW_ALLOW_FILE_STORE=true``) or a path (``*.db``: sqlite, else a
    file store); relative ones are made absolute. None: ``MLFLOW_TRACKING_URI`` when it is set as
    ``trex run`` starts, else no MLflow."""

    tensorboard: bool = True
    mlflow: str | None = None
    mlflow_experiment: str | None = None  # None: the task's name

    @field_validator("mlflow")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        """A folder or a relative ``file:`` URI is made absolute here, where the user's shell is: the
        run's actors do not share its working directory."""
        if value is None:
            return None
        error = credentials_error(value)
        if error is not None:
            raise ValueError(error)
        if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
            return "sqlite:///" + str(Path(value.removeprefix("sqlite:///")).absolute())
        if re.match(r"^[a-z][a-z0-9+.-]*:", value) and not value.startswith("file:"):
            return value
        path = Path(value.removeprefix("file://").removeprefix("file:")).expanduser().absolute()
        if path.suffix == ".db" and not value.startswith("file:"):  # a database file: MLflow's sqlite store
            return f"sqlite:///{path}"
        return f"file:{path}"


class TaskSpec(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    model: ModelSpec = ModelSpec()
    data: DataSpec
    metric: MetricSpec
    budget: Budget = Budget()
    resources: Resources = Resources()
    search: SearchSpec = SearchSpec()
    eval: EvalSpec = EvalSpec()
    tracking: TrackingSpec = TrackingSpec()
    # None: measured by the preflight (the longest target in tokens), DEFAULT_MAX_NEW_TOKENS where none ran
    max_new_tokens: int | None = Field(default=None, ge=1, le=4096)
    storage_path: str | None = None

    @field_validator("storage_path")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        error = credentials_error(value)
        if error is not None:
            raise ValueError(error)
        return value

    @property
    def new_tokens(self) -> int:
        return self.max_new_tokens or DEFAULT_MAX_NEW_TOKENS

    @property
    def seq_len(self) -> int:
        return self.model.max_seq_len or DEFAULT_MAX_SEQ_LEN

    @model_validator(mode="after")
    def _metric_direction(self) -> TaskSpec:
        # Every built-in metric is a score in [0, 1] where more is better.
        if not self.metric.higher_is_better:
            raise ValueError(
                f"metric.higher_is_better: {self.metric.name.value} is a score where higher is "
                "better; remove higher_is_better or set it to true"
            )
        return self
