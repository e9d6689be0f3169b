"""From a real environment to your own experience model, end to end on a CPU (the documented run).

Run: ``python examples/distill_textworld.py [OUT_DIR]`` (needs the ``textworld`` and ``train`` extras).

1. generate 72 TextWorld cooking games (cached in ``OUT_DIR/games``): 60 to learn from, 12 held out;
2. collect real transitions from the 60 (5 episodes each) with a policy mix (expert, noisy expert,
   random, invalid actions);
3. annotate every transition with a rule-based reasoning trace read from the game's ground truth;
4. build the SFT examples (the reasoning experience model's own prompts, with an ablation mix) and distil
   a tiny Llama with a tokenizer trained on the data;
5. play the 12 held-out games the same way and measure the distilled model's fidelity on them, with the
   four prompt variants (full, no history, no retrieval, no reasoning).

It prints a table and writes ``OUT_DIR/results.json`` (metrics, stage timings, targets met or missed).
``--quick`` runs a small version (8 + 2 games, 60 steps) to check the pipeline in a minute or two.
"""

# Static checkers cannot follow the package-dir mapping integrations/ -> dreamgym_sdk.integrations.
# pyright: reportMissingImports=false

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console

from dreamgym_sdk.cli.fidelity import fidelity_table
from dreamgym_sdk.distill import (
    DatasetConfig,
    DistillConfig,
    FidelityConfig,
    StudentConfig,
    build_dataset,
    distill,
    evaluate_fidelity,
    open_experience_model,
    write_annotated,
    write_tasks,
)
from dreamgym_sdk.integrations.textworld import (
    CookingSpec,
    PolicyMix,
    annotate_textworld,
    collect_textworld,
    generate_games,
    references_from,
    textworld_tasks,
)
from dreamgym_sdk.providers import ProviderConfig

TARGETS = {"reward_accuracy": 0.95, "done_accuracy": 0.95, "success_accuracy": 0.95}


async def main(out: Path, quick: bool) -> None:
    console = Console()
    timings: dict[str, float] = {}
    started = clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 1)
        clock = now
        console.print(f"[bold]{stage}[/bold] done in {timings[stage]:.0f} s")

    # 1. Games: one spec; seeds 0-59 to learn from, 60-71 never seen in training.
    n_train, n_held = (8, 2) if quick else (60, 12)
    spec = CookingSpec(split="train", open=True)
    games = await generate_games(spec, out / "games", range(n_train + n_held), workers=2)
    train_games, held_games = games[:n_train], games[n_train:]
    lap("games")

    # 2-3. Collect and annotate the training games.
    mix = PolicyMix(expert=0.5, noisy=0.35, random=0.15, invalid_rate=0.1)
    real = await collect_textworld(train_games, mix=mix, episodes_per_game=5, max_steps=20, seed=0)
    lap("collect")
    annotated, truth = await annotate_textworld(real, train_games)
    write_annotated(annotated, out / "annotated.jsonl")
    write_tasks(textworld_tasks(games).values(), out / "annotated.tasks.jsonl")
    lap("annotate")

    # 4. Dataset and distillation.
    dataset_config = DatasetConfig(
        k=1,
        history_window=1,
        embedder="hashing",
        ablation_mix={"full": 0.55, "no-history": 0.15, "no-retrieval": 0.15, "no-reasoning": 0.15},
    )
    dataset = await build_dataset(annotated.transitions, tasks=textworld_tasks(games), config=dataset_config)
    lap("dataset")
    config = DistillConfig(
        max_steps=60 if quick else 2500,
        warmup_lm_steps=10 if quick else 200,
        batch_size=4,
        learning_rate=3e-3,
        logging_steps=100,
        max_train_seconds=None if quick else 720,  # a guard for a busy machine: keep what is trained
        student=StudentConfig(vocab_size=2048, hidden_size=128, layers=3, heads=4),
    )

    def report(p: Any) -> None:
        loss = "n/a" if p.loss is None else f"{p.loss:.3f}"  # no loss is logged before the first interval
        console.print(f"  step {p.step}/{p.total_steps}  loss {loss}  {p.elapsed_s:.0f} s")

    result = await distill(
        dataset, out / "model", config=config, dataset_config=dataset_config, on_progress=report
    )
    lap("distill")

    # 5. Held-out games: play them, recover their ground truth, evaluate every prompt variant.
    held_real = await collect_textworld(held_games, mix=mix, episodes_per_game=3, max_steps=20, seed=1000)
    held, _ = await annotate_textworld(held_real, held_games)
    references = references_from(held)
    provider_config = ProviderConfig(request_timeout=None, backend_options={"max_batch_size": 64})
    run = await evaluate_fidelity(
        references,
        lambda variant: open_experience_model(
            result.path, variant=variant, provider_config=provider_config, max_tokens=320, max_retries=0
        ),
        model_name=f"hf:{result.path}",
        tasks=textworld_tasks(games),
        config=FidelityConfig(
            variants=("full", "no-history", "no-retrieval", "no-reasoning"),
            reward_mode=dataset_config.reward_mode,
            concurrency=64,
        ),
        replay_tasks={t.task_id for t in dataset.replay},
    )
    lap("evaluate")

    full = run.by_variant()["full"].metrics
    met = {name: getattr(full, name) >= bound for name, bound in TARGETS.items()}
    summary: dict[str, Any] = {
        "games": {"train": len(train_games), "held_out": len(held_games)},
        "transitions": {"train": len(real), "held_out": len(references)},
        "ground_truth_skipped_episodes": len(truth.skipped),
        "training": result.card.training.model_dump(mode="json"),
        "targets_met": met,
        "timings_s": {**timings, "total": round(time.perf_counter() - started, 1)},
        "fidelity": run.model_dump(mode="json", exclude={"results": {"__all__": {"predictions"}}}),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    console.print(fidelity_table(run))
    console.print({k: ("met" if v else "MISSED") for k, v in met.items()})
    console.print(f"total {summary['timings_s']['total']:.0f} s; results in {out / 'results.json'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Distil a TextWorld experience model and measure it.")
    parser.add_argument("out", nargs="?", default="distill-run", type=Path)
    parser.add_argument("--quick", action="store_true", help="a small run to check the pipeline")
    args = parser.parse_args()
    anyio.run(main, args.out, args.quick)
