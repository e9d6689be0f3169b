"""Re-measure a finished demo run's sim-vs-real gap with other synthetic-environment settings.

    python scripts/demo_gap.py RUN_DIR --seed 2 --out /tmp/gap-off --set exact_replay=false \
        --set outcome_checks=0

The seed's SFT policy plays the run's first ``gap_tasks`` training games twice in the game and twice in
the synthetic environment (the run's experience model and replay buffer), as the demo's gap stage does
(:func:`dreamgym_sdk.demo.gap.measure_gap`); ``--set`` changes the experience-model settings that stage
reads (``exact_replay``, ``outcome_checks``, ``experience_max_tokens``, ``gap_tasks``). Writes
``gap.json`` and ``gap-replays.jsonl`` under ``--out`` and prints a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import anyio

from dreamgym_sdk.collect import read_jsonl
from dreamgym_sdk.demo.arms import dream_env_factory
from dreamgym_sdk.demo.config import DemoConfig
from dreamgym_sdk.demo.data import episodes_of, make_games, open_dream_model, starting_where_played
from dreamgym_sdk.demo.gap import measure_gap

SETTINGS = {"exact_replay", "outcome_checks", "experience_max_tokens", "gap_tasks"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Re-measure a demo run's sim-vs-real gap.")
    parser.add_argument("run", type=Path, help="a demo run directory (with demo-config.json)")
    parser.add_argument("--seed", type=int, required=True, help="whose SFT policy plays (seed-N/sft)")
    parser.add_argument("--out", type=Path, required=True, help="where gap.json is written")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings")
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    saved = json.loads((args.run / "demo-config.json").read_text())
    changes: dict[str, object] = {}
    for item in args.settings:
        key, _, value = item.partition("=")
        if key not in SETTINGS:
            raise SystemExit(f"--set {key}: choose from {', '.join(sorted(SETTINGS))}")
        changes[key] = json.loads(value)
    config = DemoConfig.model_validate(saved | changes)
    train, _ = await make_games(config, args.run / "games", lambda _: None)
    tasks = [g.to_task() for g in train]
    transitions = read_jsonl(args.run / "offline.jsonl")
    dream_tasks = starting_where_played(tasks, episodes_of(transitions, {t.id: t for t in tasks}))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gap.json").unlink(missing_ok=True)  # measure anew, never read back
    replay = args.out / "replay"
    shutil.rmtree(replay, ignore_errors=True)
    shutil.copytree(args.run / "replay", replay)  # the run's buffer, copied: the run stays as it was
    model = config.experience_model or f"hf:{args.run / 'experience-model'}"
    async with open_dream_model(config, model, transitions, replay) as dream:
        gap = await measure_gap(
            config,
            policy_dir=args.run / f"seed-{args.seed}" / "sft",
            tasks=dream_tasks[: config.gap_tasks],
            dream_envs=dream_env_factory(config, dream),
            model=dream,
            seed=args.seed,
            path=args.out / "gap.json",
        )
    real, synthetic = gap.real, gap.synthetic
    print(
        f"exact_replay={config.exact_replay} outcome_checks={config.outcome_checks}: "
        f"real {real.successes}/{real.episodes}, synthetic {synthetic.successes}/{synthetic.episodes} "
        f"(gap {gap.success_gap:+.3f}), length ratio {gap.length_ratio:.2f}, reward agreement "
        f"{gap.reward_agreement:.3f}, done agreement {gap.done_agreement:.3f}, WM2Real {gap.wm2real}, "
        f"first divergences {gap.divergent_verbs}"
    )


if __name__ == "__main__":
    anyio.run(main, parse_args())
