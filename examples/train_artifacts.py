"""The artifacts ``examples/train.toml`` trains from, made from nothing on a CPU, as ``dreamgym demo`` makes
them (needs the ``textworld`` and ``train`` extras).

Run: ``python examples/train_artifacts.py [OUT_DIR] [--quick]`` (``OUT_DIR`` defaults to ``dreamgym-train``,
the directory ``examples/train.toml`` names). It writes

- ``OUT_DIR/games``: TextWorld cooking games;
- ``OUT_DIR/real.jsonl``: real transitions played in them by an expert, a noisy expert and a random player;
- ``OUT_DIR/experience-model``: a tiny experience model distilled from them (with its card and the
  transitions it learned to read, ``replay.jsonl``);
- ``OUT_DIR/policy``: the SFT policy, a tiny model behaviour-cloned on the real episodes.

Then, from the same directory (the ``README`` of ``dreamgym train`` in the docs says more)::

    dreamgym collect tasks --games-from OUT_DIR/games -o OUT_DIR/tasks.jsonl
    dreamgym replay import OUT_DIR/experience-model/replay.jsonl --uri OUT_DIR/replay --embedder hashing
    dreamgym train --config examples/train.toml

``--quick`` makes small ones in about 90 s on 2 CPU cores (CI trains from them; their numbers mean little).
"""

# Static checkers cannot follow the package-dir mapping integrations/ -> dreamgym_sdk.integrations.
# pyright: reportMissingImports=false

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anyio

from dreamgym_sdk.collect import JsonlSink
from dreamgym_sdk.demo.data import episodes_of
from dreamgym_sdk.distill import DatasetConfig, DistillConfig, StudentConfig, build_dataset, distill
from dreamgym_sdk.integrations.textworld import (
    CookingSpec,
    PolicyMix,
    annotate_textworld,
    collect_textworld,
    generate_games,
    textworld_tasks,
)
from dreamgym_sdk.policies import (
    BCConfig,
    HFPolicy,
    HFPolicyConfig,
    TinyPolicyConfig,
    behaviour_clone,
    build_policy_model,
)


async def main(out: Path, quick: bool) -> None:
    started = time.perf_counter()
    # 1. Games and real transitions (the demo's cooking games and player mix).
    spec = CookingSpec(split="train", open=True)
    games = await generate_games(spec, out / "games", range(8 if quick else 60), workers=2)
    mix = PolicyMix(expert=0.5, noisy=0.35, random=0.15, invalid_rate=0.1)
    real = await collect_textworld(
        games, mix=mix, episodes_per_game=3 if quick else 5, max_steps=12 if quick else 20, seed=0
    )
    (out / "real.jsonl").unlink(missing_ok=True)
    await JsonlSink(out / "real.jsonl").add(real)

    # 2. The experience model: annotated transitions, the demo's prompt settings, a tiny student.
    annotated, _ = await annotate_textworld(real, games)
    dataset_config = DatasetConfig(
        k=1,
        history_window=1,
        embedder="hashing",
        exclude="episode",  # the training games are the tasks: retrieve from the same game, another episode
        retrieval_scope="task",
        answer_format="sections",  # no JSON quoting for a tiny model to get wrong
        # the demo also trains on prompts with one input switched off, to measure the ablations; a quick model
        # learns the one prompt the synthetic environment asks faster
        ablation_mix=(
            {"full": 1.0}
            if quick
            else {"full": 0.55, "no-history": 0.15, "no-retrieval": 0.15, "no-reasoning": 0.15}
        ),
    )
    tasks = textworld_tasks(games)
    dataset = await build_dataset(annotated.transitions, tasks=tasks, config=dataset_config)
    distill_config = DistillConfig(
        max_steps=500 if quick else 1500,  # after 300 steps, a third of the answers still do not parse
        warmup_lm_steps=50 if quick else 150,
        batch_size=4,
        learning_rate=3e-3,
        logging_steps=100,
        student=(
            StudentConfig(vocab_size=2048, hidden_size=64, layers=2, heads=2)  # learns the format as fast
            if quick
            else StudentConfig(vocab_size=2048, hidden_size=128, layers=3, heads=4)
        ),
    )
    await distill(dataset, out / "experience-model", config=distill_config, dataset_config=dataset_config)

    # 3. The SFT policy: a tiny model whose tokenizer knows the games' words, cloned on the real episodes.
    corpus = [t.instruction for t in tasks.values()]
    for t in real:
        corpus += [t.state, t.action, t.next_state]
    acting = HFPolicyConfig(prompt_style="transcript", show_admissible=False, constrain_to_admissible=True)

    def clone() -> HFPolicy:
        start = build_policy_model(out / "policy.init", corpus, TinyPolicyConfig(seed=0))
        return HFPolicy.from_pretrained(start, acting)

    policy = await anyio.to_thread.run_sync(clone)
    episodes = episodes_of(real, tasks)
    await behaviour_clone(policy, episodes, BCConfig(epochs=2 if quick else 3, learning_rate=2e-3))
    await anyio.to_thread.run_sync(policy.save_pretrained, out / "policy")
    print(f"games, real.jsonl, experience-model and policy in {out} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Make the artifacts examples/train.toml trains from.")
    parser.add_argument("out", nargs="?", default="dreamgym-train", type=Path)
    parser.add_argument("--quick", action="store_true", help="small artifacts, to check the pipeline")
    args = parser.parse_args()
    anyio.run(main, args.out, args.quick)
