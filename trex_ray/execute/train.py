"""The training loop that runs on every worker: DeepSpeed (ZeRO 0-3) over a causal LM, full or LoRA.

``train_loop(config)`` works in this process (``launch.InProcessLauncher``, world size 1) and inside a
Ray Train worker (``trex_ray.runtime.train_launcher.RayTrainLauncher``). ``config`` holds paths
and numbers only (plus an optional picklable progress callback)::

    {"base_dir", "train_path", "val_path", "output_dir", "mode", "recipe": TrainRecipe dict,
     "seed", "max_seq_len", "parent_checkpoint", "parent_adapter", "progress", "num_threads",
     "val_max_examples", "compile", "sync_every", "tensorboard_dir",
     "accumulation", "gradient_checkpointing", "zero_stage", "offload", "checkpointer"}

Memory (``resources.*`` of the task): ``accumulation`` micro-batches per optimizer step (the plan's
batch size stays the effective batch), ``gradient_checkpointing``, ``zero_stage`` (None: the plan's),
``offload`` (``none`` / ``optimizer`` / ``all``: ZeRO-Offload to CPU memory).
A tied input embedding's gradient is made once, in the lookup's backward (``tied.py``).

Long trials: with a ``checkpointer`` (``execute/context.py::TrialCheckpointer``, given by the Ray Train
launcher) the loop saves its state every ``checkpointer.every`` steps (``execute/trial_state.py``) and,
restarted after a worker died, resumes from the last one: the result then says
``resumed_from_step`` and ``steps_redone``.

On a GPU the step is kept on the device: the optimizer is fused AdamW, the loss reaches the host
only every ``SYNC_EVERY`` steps (and at each report), and with ``compile`` (``"auto"``: on a GPU for
runs of at least ``COMPILE_MIN_STEPS`` steps) each decoder layer is compiled by ``torch.compile``.

It returns ``{"steps", "tokens", "curve", "final_train_loss", "checkpoint", "adapter",
"base_model", "stopped", "diverged", "error", "timings"}``; rank 0's return value is the run's.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from trex_ray.execute import trial_state
from trex_ray.execute.context import Decision
from trex_ray.execute.encode import IGNORE, collate, encode_split
from trex_ray.execute.engine import _engine, compile_layers, ds_config, partitioned_load, should_compile
from trex_ray.execute.launch import init_distributed, return_freed_memory, seed_all
from trex_ray.execute.models import load_for_training, training_base, write_checkpoint_meta
from trex_ray.execute.tied import TiedGradient, skip_lookup_gather
from trex_ray.execute.tracking import tb_writer
from trex_ray.spec import Progress, TrainMode, TrainRecipe

logger = logging.getLogger(__name__)

Loop = Callable[[dict[str, Any]], dict[str, Any]]
DIVERGENCE_FACTOR = 3.0
EMA = 0.9
SYNC_EVERY = 8  # steps between reads of the loss on the host (a read waits for the GPU)
VAL_LOSS_ROWS = 64  # validation rows of the loss reports (the node's metric is scored on all of them)


# --- the run ----------------------------------------------------------------------------------


class _Run:
    """State of one worker's training run; the loop's pieces as small methods."""

    def __init__(self, config: dict[str, Any], rank: int, world: int) -> None:
        self.config, self.rank, self.world = config, rank, world
        self.recipe = TrainRecipe.model_validate(config["recipe"])
        self.mode = TrainMode(config.get("mode", self.recipe.mode))
        self.progress: Callable[[Progress], Decision] | None = config.get("progress")
        self.timings: dict[str, float] = {}
        self.curve: list[Progress] = []
        self.step = self.tokens = self.pending_tokens = 0
        self.sync_every = int(config.get("sync_every") or (SYNC_EVERY if torch.cuda.is_available() else 1))
        self.accum = int(config.get("accumulation") or 1)
        stage = config.get("zero_stage")
        self.stage = self.recipe.zero_stage if stage is None else int(stage)
        self.ema: float | None = None
        self.initial: float | None = None
        self.window: list[float] = []
        # TensorBoard curves, live, from rank 0 (execute/tracking.py)
        self.tb = tb_writer(config.get("tensorboard_dir")) if rank == 0 else None
        self.checkpointer = config.get("checkpointer")  # periodic checkpoints (a TrialCheckpointer), or None
        self.saved_step = 0
        self.resumed: dict[str, int] | None = None
    def build(self) -> None:
        t0 = time.perf_counter()
        c = self.config
        self.micro = max(1, self.recipe.batch_size // (self.world * self.accum))
        memory = {"accumulation": self.accum, "stage": self.stage, "offload": c.get("offload") or "none",
                  "hidden_size": _hidden_size(c["base_dir"])}
        # ZeRO-3 partitions at load, unless the load merges a parent's adapter into whole weights
        merges = bool(c.get("parent_adapter")) and self.mode is TrainMode.full
        self.partitioned = self.stage == 3 and not merges
        with partitioned_load(ds_config(self.recipe, self.micro, **memory) if self.partitioned else None):
            self.model, self.tokenizer = load_for_training(
                c["base_dir"], self.mode, c.get("parent_checkpoint"), bool(c.get("parent_adapter")),
                self.recipe)
        max_len = int(c.get("max_seq_len", 128))
        self.train_rows = encode_split(c["train_path"], self.tokenizer, max_len)
        val_limit = int(c.get("val_max_examples", VAL_LOSS_ROWS))
        self.val_rows = encode_split(c["val_path"], self.tokenizer, max_len, val_limit)
        if not self.train_rows:
            raise ValueError("the training split is empty; check the data recipe")
        per_epoch = math.ceil(len(self.train_rows) / (self.micro * self.world * self.accum))
        self.total = max(1, math.ceil(self.recipe.epochs * per_epoch))
        self.warmup = int(self.recipe.warmup_ratio * self.total)
        self.timings["load_s"] = time.perf_counter() - t0
        if c.get("gradient_checkpointing"):
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.tied = TiedGradient.install(self.model)  # the tied embedding's gradient made once
        if should_compile(c.get("compile", "auto"), self.total):
            self.timings["compiled_layers"] = compile_layers(self.model)
        t0 = time.perf_counter()
        self.engine = _engine(self.model, self.recipe, self.micro, self.total, memory,
                              placed=self.partitioned)
        if self.tied is not None and self.stage == 3:
            skip_lookup_gather(self.tied)
        self.timings["deepspeed_init_s"] = time.perf_counter() - t0
        if self.checkpointer is not None:
            self._resume()

    def _resume(self) -> None:
        """Go on from the last periodic checkpoint, if this trial has one (its worker died)."""
        folder = self.checkpointer.restore()
        if folder is None:
            return
        furthest = self.checkpointer.last_beat()
        state = trial_state.load(self.engine, folder)
        self.step = self.saved_step = int(state["step"])
        self.tokens = int(state["tokens"])
        self.curve = [Progress.model_validate(p) for p in state["curve"]]
        self.initial, self.ema = state.get("initial"), state.get("ema")
        redone = max(0, furthest - self.step) if furthest is not None else None
        self.resumed = {"resumed_from_step": self.step, "steps_redone": redone if redone is not None else -1}
        logger.warning("resumed from the checkpoint of step %d (%s steps done since are redone)",
                       self.step, "?" if redone is None else redone)

    def _save_state(self) -> None:
        counters = {"step": self.step, "tokens": self.tokens, "curve": [p.model_dump() for p in self.curve],
                    "initial": self.initial, "ema": self.ema}
        trial_state.save(self.engine, self.rank, counters, self.checkpointer)
        self.saved_step = self.step

    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        from torch.utils.data import DataLoader, DistributedSampler

        seed = int(self.config["seed"])
        sampler = DistributedSampler(self.train_rows, num_replicas=self.world, rank=self.rank, seed=seed)
        pad = self.tokenizer.pad_token_id
        loader = DataLoader(self.train_rows, batch_size=self.micro, sampler=sampler,
                            collate_fn=lambda rows: collate(rows, pad))
        skip, epoch = self.step * self.accum, 0  # a resumed trial: the micro-batches trained already
        per_epoch = len(loader)
        epoch, skip = skip // per_epoch, skip % per_epoch
        while True:
            sampler.set_epoch(epoch)
            for batch in loader:
                if skip:
                    skip -= 1
                    continue
                yield batch
            epoch += 1

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.engine.device) for k, v in batch.items()}

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The mean token loss of the batch's answers (HF's causal-LM loss), computing the output layer
        only where a label is scored: the prompt's positions never reach the vocabulary-wide logits,
        which on a 49 k vocabulary and short answers are most of a step's memory traffic."""
        clear = getattr(self.engine.optimizer, "clear_backward_seen_flag", None)
        if clear is not None:  # what engine.forward does first: ZeRO-3 counts its micro-batches there, and
            clear()            # without it each accumulated micro-batch's gradient replaces the last one's
        lm = self.engine.module
        lm = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
        body, head = lm.get_decoder(), lm.get_output_embeddings()
        if body is None or head is None:
            return self.engine(**batch).loss
        extra = {"use_cache": False} if self.config.get("gradient_checkpointing") else {}
        out = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **extra)
        hidden = out.last_hidden_state
        targets = batch["labels"][:, 1:]
        scored = targets != IGNORE
        logits = head(hidden[:, :-1][scored]).float()
        return torch.nn.functional.cross_entropy(logits, targets[scored])

    def train_step(self, batches: Iterator[dict[str, torch.Tensor]]) -> torch.Tensor:
        """One optimizer step; returns this worker's loss, still on the device (no wait for the GPU)."""
        self.engine.train()
        if self.accum > 1:
            return self._accumulated_step([next(batches) for _ in range(self.accum)])
        batch = next(batches)
        self.pending_tokens += int(batch["attention_mask"].sum())  # on the host: no sync
        loss = self.loss(self._to_device(batch))
        self.engine.backward(loss)
        self.engine.step()
        self.step += 1
        return loss.detach().float()

    def _accumulated_step(self, micro: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        """Micro-batches of one optimizer step: each one's mean token loss weighted by its share of the
        step's scored tokens, so that the step's loss and gradient are those of one batch of all of them
        (a plain mean of micro-batch means would weigh a short answer's tokens more)."""
        scored = [int((b["labels"][:, 1:] != IGNORE).sum()) for b in micro]
        total = max(1, sum(scored))
        step_loss = torch.zeros((), device=self.engine.device)
        for batch, n in zip(micro, scored, strict=True):
            self.pending_tokens += int(batch["attention_mask"].sum())
            loss = self.loss(self._to_device(batch)) * (n / total)
            self.engine.backward(loss, scale_wrt_gas=False)  # weighted here, not divided by k again
            self.engine.step()  # DeepSpeed steps the optimizer at the last micro-batch only
            step_loss = step_loss + loss.detach().float()
        self.step += 1
        return step_loss

    def sync(self, losses: list[torch.Tensor]) -> list[float]:
        """The losses of the last steps averaged over workers, on the host (one wait, one all-reduce)."""
        tokens = torch.tensor(float(self.pending_tokens), device=losses[0].device)
        t = torch.stack([*losses, tokens]).double()
        if self.world > 1:
            dist.all_reduce(t)
        values = t.tolist()
        self.tokens += int(values[-1])
        self.pending_tokens = 0
        return [v / self.world for v in values[:-1]]

    def diverged(self, loss: float, step: int) -> bool:
        """Non-finite loss, or the smoothed loss above 3x the first loss once warmup is over."""
        if not math.isfinite(loss):
            return True
        self.initial = loss if self.initial is None else self.initial
        self.ema = loss if self.ema is None else EMA * self.ema + (1 - EMA) * loss
        return step > max(self.warmup, 1) and self.ema > DIVERGENCE_FACTOR * self.initial

    @torch.no_grad()
    def val_loss(self) -> float | None:
        if not self.val_rows:
            return None
        self.engine.eval()
        total, count, size = 0.0, 0, 64
        for i in range(0, len(self.val_rows), size):
            rows = self.val_rows[i:i + size]
            batch = self._to_device(collate(rows, self.tokenizer.pad_token_id))
            n = int((batch["labels"][:, 1:] != IGNORE).sum())
            total += float(self.loss(batch)) * n
            count += n
        return total / max(1, count)

    def report(self) -> Decision:
        """Record a curve point; ask the progress callback (rank 0) and share its decision."""
        train_loss = sum(self.window) / len(self.window) if self.window else float("nan")
        self.window = []
        point = Progress(fraction=min(1.0, self.step / self.total), step=self.step,
                         train_loss=train_loss, val_loss=self.val_loss())
        self.curve.append(point)
        if self.tb is not None and point.val_loss is not None:
            self.tb.add_scalar("val/loss", point.val_loss, self.step)
            self.tb.flush()
        logger.info("step %d/%d train %.4f val %s", self.step, self.total, train_loss, point.val_loss)
        stop = 0
        if self.rank == 0 and self.progress is not None and self.step < self.total:
            stop = int(Decision(self.progress(point)) is Decision.STOP)
        if self.world > 1:
            flag = torch.tensor([stop], device=self.engine.device)
            dist.broadcast(flag, src=0)
            stop = int(flag.item())
        return Decision.STOP if stop else Decision.CONTINUE

    def report_steps(self) -> set[int]:
        every = self.recipe.eval_every_fraction
        marks = {min(self.total, max(1, round(k * every * self.total))) for k in range(1, int(1 / every) + 2)}
        return marks | {self.total}

    def run(self) -> str:
        """Train to the planned step count; returns 'finished', 'stopped' or 'diverged'."""
        t0, c0 = time.perf_counter(), time.process_time()
        marks, batches = self.report_steps(), self.batches()
        status, pending = "finished", []
        while self.step < self.total and status == "finished":
            pending.append(self.train_step(batches))
            if len(pending) < self.sync_every and self.step not in marks and self.step < self.total:
                continue
            status = self._check(self.sync(pending), self.step - len(pending) + 1)
            pending = []
            if self.tb is not None:
                self.tb.add_scalar("train/lr", float(self.engine.get_lr()[0]), self.step)
            if self.checkpointer is not None and self.rank == 0:
                self.checkpointer.beat(self.step)
            if status == "finished" and self.step in marks and self.report() is Decision.STOP \
                    and self.step < self.total:
                status = "stopped"
            if self.checkpointer is not None and status == "finished":
                self._checkpoint_now()  # after the report: a resumed trial has its curve up to here
        self.timings["train_s"] = time.perf_counter() - t0
        self.timings["train_cpu_s"] = time.process_time() - c0
        return status

    def _checkpoint_now(self) -> None:
        if self.step < self.total and self.step - self.saved_step >= self.checkpointer.every:
            self._save_state()

    def _check(self, losses: list[float], first_step: int) -> str:
        """Take the synced losses of steps ``first_step``...; 'diverged' at the first bad one."""
        for step, loss in enumerate(losses, start=first_step):
            self.window.append(loss)
            if self.tb is not None and math.isfinite(loss):
                self.tb.add_scalar("train/loss", loss, step)
            if self.diverged(loss, step):
                self.curve.append(Progress(fraction=step / self.total, step=step,
                                           train_loss=loss if math.isfinite(loss) else 1e30))
                return "diverged"
        return "finished"

    def save(self, output_dir: str) -> None:
        t0 = time.perf_counter()
        state = self.engine._zero3_consolidated_16bit_state_dict() if self.stage == 3 else None
        if self.rank == 0:
            out = Path(output_dir)
            out.mkdir(parents=True, exist_ok=True)
            kwargs = {"state_dict": state} if state is not None else {}
            self.engine.module.save_pretrained(str(out), **kwargs)
            self.tokenizer.save_pretrained(str(out))
            c = self.config
            base = training_base(c["base_dir"], c.get("parent_checkpoint"), bool(c.get("parent_adapter")))
            write_checkpoint_meta(out, self.adapter, base if self.adapter else out)
        if self.world > 1:
            dist.barrier()
        self.timings["save_s"] = time.perf_counter() - t0

    @property
    def adapter(self) -> bool:
        return self.mode is TrainMode.lora

    def result(self, status: str, checkpoint: str | None) -> dict[str, Any]:
        finals = [p.train_loss for p in self.curve if math.isfinite(p.train_loss)]
        return {
            "steps": self.step, "tokens": self.tokens, "planned_steps": self.total,
            "curve": [p.model_dump() for p in self.curve],
            "final_train_loss": finals[-1] if finals else None,
            "checkpoint": checkpoint, "adapter": self.adapter,
            "stopped": status == "stopped", "diverged": status == "diverged",
            "timings": self.timings, **(self.resumed or {}),
        }


def _hidden_size(model_dir: str) -> int | None:
    """The model's hidden size from its ``config.json`` (sizes ZeRO-3's buckets), or None."""
    try:
        return int(json.loads((Path(model_dir) / "config.json").read_text())["hidden_size"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


def _num_threads(config: dict[str, Any]) -> int:
    return max(1, int(config.get("num_threads") or os.environ.get("OMP_NUM_THREADS") or 1))


def train_loop(config: dict[str, Any]) -> dict[str, Any]:
    """Train one plan on this worker; see the module docstring for ``config`` and the result."""
    torch.set_num_threads(_num_threads(config))
    seed_all(int(config["seed"]))
    rank, world = init_distributed()
    run = _Run(config, rank, world)
    if run.stage == 3:  # memory is the point of ZeRO-3; its cost in step time is not measured yet, so
        return_freed_memory()  # other stages keep glibc's default (benchmarks/zero3_memory.py: both)
    try:
        run.build()
        status = run.run()
        checkpoint = None
        if status == "finished":
            run.save(config["output_dir"])
            checkpoint = str(config["output_dir"])
        return run.result(status, checkpoint)
    finally:
        if run.tb is not None:
            run.tb.close()
