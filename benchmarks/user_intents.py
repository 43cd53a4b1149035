"""A user's own task, as a new user would bring it: six support-ticket intents in JSONL, a task file
in the README's format that names no model (so the embedded SmolLM2-135M-Instruct is used).

    python benchmarks/user_intents.py --out /tmp/intents            # writes train/test JSONL + task.yaml
    python benchmarks/user_intents.py --out /tmp/intents --run      # and runs `trex run` on it

The tickets are written from templates with varied slots (products, order numbers, dates, tone), 480
train and 150 test rows; the labels carry underscores (``cancel_subscription``), which the tiny test
model's tokenizer cannot write. With ``--run`` the result (base and best test accuracy) is written to
``benchmarks/results/user_intents.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

INTENTS: dict[str, list[str]] = {
    "cancel_subscription": [
        "please cancel my {plan} subscription, I no longer need it",
        "how do I stop my {plan} plan from renewing next month?",
        "I want to end my membership before the {date} billing date",
        "cancel the {plan} account for {name}, thanks",
        "stop charging me for {plan}, I am done with the service",
    ],
    "shipping_delay": [
        "my order {order} was supposed to arrive {date} and it still is not here",
        "where is my {product}? tracking has not moved for {days} days",
        "the delivery of order {order} is late again",
        "it has been {days} days and my {product} has not shipped",
        "why is my package with the {product} stuck in transit?",
    ],
    "refund_request": [
        "I returned the {product} last week, when do I get my money back?",
        "please refund order {order}, the {product} arrived broken",
        "I would like my money back for the {product}",
        "can I get a refund for the {plan} charge on {date}?",
        "the {product} was not as described, I want a refund",
    ],
    "password_reset": [
        "I forgot my password and cannot log in",
        "the reset link for my account {name} does not work",
        "how can I change my password? I am locked out since {date}",
        "I never got the password reset email",
        "my login fails even with the new password I set {days} days ago",
    ],
    "billing_error": [
        "I was charged twice for order {order}",
        "my card was billed {amount} but the {plan} plan costs less",
        "there is a charge of {amount} on {date} that I do not recognise",
        "the invoice for {name} shows the wrong amount",
        "you billed me for {plan} after I switched to the free plan",
    ],
    "product_question": [
        "does the {product} work with a {other}?",
        "what is the battery life of the {product}?",
        "is the {product} available in another colour?",
        "can I use the {product} outdoors in the rain?",
        "what size should I pick for the {product}?",
    ],
}
SLOTS = {
    "plan": ["premium", "family", "basic", "pro", "student"],
    "date": ["Monday", "March 3rd", "last Friday", "the 15th", "yesterday"],
    "name": ["jdoe", "maria.k", "sam_88", "the office account", "my husband"],
    "order": ["#48213", "A-1093", "#77120", "ORD-5521", "#30018"],
    "product": ["headphones", "coffee maker", "desk lamp", "running shoes", "phone case", "blender"],
    "days": ["three", "five", "ten", "two", "twelve"],
    "amount": ["$49.99", "$12", "$120", "$7.50", "$300"],
    "other": ["laptop", "car charger", "tablet", "smart TV"],
}
OPENERS = ["", "hi, ", "hello team, ", "urgent: ", "hey - "]
CLOSERS = ["", " thanks", " please help", " asap", "!!"]


def ticket(rng: random.Random, template: str) -> str:
    text = template.format(**{k: rng.choice(v) for k, v in SLOTS.items()})
    return f"{rng.choice(OPENERS)}{text}{rng.choice(CLOSERS)}".strip()


def rows(n: int, seed: int) -> list[dict[str, str]]:
    rng, out = random.Random(seed), []
    labels = sorted(INTENTS)
    for i in range(n):
        label = labels[i % len(labels)]
        out.append({"text": ticket(rng, rng.choice(INTENTS[label])), "label": label})
    rng.shuffle(out)
    return out


TASK = """\
name: support-intents
description: Classify the intent of a customer support ticket.
data:
  train: [{{id: "{train}", input_field: text, target_field: label}}]
  eval: {{id: "{test}", input_field: text, target_field: label}}
metric: {{name: accuracy}}
budget: {{max_nodes: {nodes}}}
"""


def write(out: Path, nodes: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", 480, 1), ("test", 150, 2)):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(n, seed)))
    task = out / "task.yaml"
    task.write_text(TASK.format(train=out / "train.jsonl", test=out / "test.jsonl", nodes=nodes))
    return task


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/trex-intents"))
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--run", action="store_true")
    args = parser.parse_args()
    task = write(args.out, args.nodes)
    print(task)
    if not args.run:
        return 0
    run_dir = args.out / "run"
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "trex_ray.cli", "run", str(task), "--run-dir", str(run_dir),
                    "--quiet"], check=True)
    report = json.loads(subprocess.run([sys.executable, "-m", "trex_ray.cli", "report", str(run_dir),
                                        "--format", "json"], check=True, capture_output=True).stdout)
    keys = ("model", "base_metric", "base_test_metric", "best", "test_gain", "counts")
    result = {k: report[k] for k in keys}
    result.update(wall_minutes=round((time.time() - t0) / 60, 1), command=" ".join(sys.argv),
                  date=time.strftime("%Y-%m-%d"), machine="2-core CPU, 24 GiB")
    path = Path(__file__).parent / "results" / "user_intents.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
