"""``dreamgym demo``: the whole DreamGym method on TextWorld, on a CPU, in one command.

1. generate TextWorld cooking games: a training split and held-out games;
2. collect offline real episodes on the training games (expert, noisy-expert and random players), and
   exploration that only the experience model learns from (random players' episodes, and every command
   the game admits tried once in every state of its solution);
3. distil a tiny local reasoning experience model from both, grounded on a LanceDB buffer on disk;
4. behaviour-clone a small policy on the offline episodes (the SFT policy; every RL arm starts from it);
5. per seed, train with GRPO: in the real games (real-environment RL), purely in the synthetic
   environment (DreamGym, 0 real transitions), and DreamGym followed by a short real stint
   (DreamGym-S2R, at most ``real_share_cap`` of real-environment RL's real transitions);
6. evaluate every policy and a random one on the held-out real games; print a table, write
   ``results.json`` and a plot ``results.png``.

Every stage keeps its output in the run directory, so running the same command again resumes where a
crash or Ctrl-C stopped it. Needs the ``textworld``, ``train`` and ``plot`` extras.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import time
import warnings
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.progress import Progress, TextColumn

from dreamgym_sdk._versions import package_versions
from dreamgym_sdk.curriculum import StartStateVariations, TaskGenerator
from dreamgym_sdk.demo.arms import (
    ArmRun,
    arm_dirs,
    clone_policy,
    corpus_of,
    dream_env_factory,
    evaluate_policy,
    load_policy,
    real_env_factory,
    train_rl,
)
from dreamgym_sdk.demo.config import ARMS, MODES, DemoConfig
from dreamgym_sdk.demo.data import (
    collect_real,
    episodes_of,
    make_games,
    open_dream_model,
    starting_where_played,
    train_experience_model,
)
from dreamgym_sdk.demo.gap import SimRealGap, measure_gap
from dreamgym_sdk.demo.report import (
    ArmSummary,
    compare,
    differences_table,
    plot_results,
    results_table,
    summarise,
)
from dreamgym_sdk.distill.card import CARD_FILE
from dreamgym_sdk.distill.sft import TrainingProgress
from dreamgym_sdk.errors import ConfigError, NothingToTrainError
from dreamgym_sdk.experience.base import ExperienceModel
from dreamgym_sdk.policies.baselines import RandomPolicy
from dreamgym_sdk.rollout import EnvFactory
from dreamgym_sdk.training.evaluate import EvalReport, PairedDifference
from dreamgym_sdk.types import Task, Transition

__all__ = ["ARMS", "DemoConfig", "DemoResult", "run_demo"]

T = TypeVar("T")


class DemoResult(BaseModel):
    """What ``results.json`` holds."""

    model_config = ConfigDict(frozen=True)

    config: DemoConfig
    offline_transitions: int
    """The demonstrations every policy but random starts from (behaviour cloning, grounding)."""
    exploration_transitions: int = 0
    """The exploration transitions (random play, solution branches) that only ground and train the experience
    model."""
    experience_model: str
    arms: dict[str, list[ArmSummary]]
    """Per evaluation mode (``greedy``: temperature 0; ``sampled``: temperature 1, as trained), one row per
    policy."""
    differences: dict[str, dict[str, PairedDifference]] = {}
    """Per evaluation mode, ``"A − B"`` → A's success minus B's on the same held-out games (paired bootstrap
    interval, seeds pooled)."""
    gaps: dict[str, SimRealGap] = {}
    """Per seed: the SFT policy on training games in the real and the synthetic environment, and the
    experience model's per-step agreement with its real episodes."""
    real_share: float
    """DreamGym-S2R's real transitions in RL over real-environment RL's (mean over seeds)."""
    steps_per_s: dict[str, float] = {}
    """Rollout throughput of each RL arm: environment steps per second of rollout, synthetic for DreamGym,
    real for the others (mean over its updates and seeds)."""
    runs: dict[str, dict[str, Any]]
    """Per seed and arm: the evaluation report, the RL metrics per iteration and the real transitions."""
    checks: dict[str, bool]
    """The comparisons the demo is about (see ``docs/results-demo.md``)."""
    warnings: list[str] = []
    """RL arms that trained on nothing: no usable episode, or no optimizer step, in the whole stage."""
    timings_s: dict[str, float]
    versions: dict[str, str]
    """Python and the packages the run depended on (results move with them; see ``make lock``)."""


async def run_demo(config: DemoConfig, out: str | Path, *, console: Console | None = None) -> DemoResult:
    """Run (or resume) the demo in ``out``; returns the results and writes ``out/results.json`` and
    ``out/results.png``. Libraries below stay quiet while it runs (the demo shows its own progress) and
    speak as before once it returns or fails."""
    with _quiet_libraries():
        return await _Demo(config, Path(out), console or Console()).run()


@contextlib.contextmanager
def _quiet_libraries() -> Generator[None]:
    """No per-file progress bars or deprecation notices from transformers, TRL and the Hub within; their
    warning filters, verbosity and progress bars are restored on the way out."""
    with contextlib.ExitStack() as restore:
        restore.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|trl)\.")
        with contextlib.suppress(ImportError):
            import transformers.utils.logging as hf_logging

            verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
            restore.callback(hf_logging.set_verbosity, verbosity)
            if bars:
                restore.callback(hf_logging.enable_progress_bar)
        with contextlib.suppress(ImportError):
            import huggingface_hub.utils as hub

            if not hub.are_progress_bars_disabled():
                hub.disable_progress_bars()
                restore.callback(hub.enable_progress_bars)
        yield


@dataclass
class _SeedRun:
    reports: dict[str, dict[str, EvalReport]] = field(default_factory=dict[str, dict[str, EvalReport]])
    """Mode (``greedy``, ``sampled``) → arm → report."""
    rl: dict[str, ArmRun] = field(default_factory=dict[str, ArmRun])
    gap: SimRealGap | None = None


class _Demo:
    def __init__(self, config: DemoConfig, out: Path, console: Console) -> None:
        self.config, self.out, self.console = config, out, console
        self.timings: dict[str, float] = {}

    async def stage(
        self,
        name: str,
        work: Callable[[], Awaitable[T]],
        *,
        kept: Path | None = None,
        resumed: Path | None = None,
    ) -> T:
        """Run one stage. ``kept``: the file or directory that holds the stage's finished output (a re-run
        reuses it); ``resumed``: where an unfinished stage left a checkpoint to go on from."""
        how = ""
        if kept is not None and await anyio.Path(kept).exists():
            how = f"reused from {kept}"
        elif resumed is not None and await anyio.Path(resumed).exists():
            how = f"resumed from {resumed}"
        self.console.rule(f"[bold]{name}" + (f"[/] ({how})" if how else ""))
        started = time.perf_counter()
        result = await work()
        self.timings[name] = round(time.perf_counter() - started, 1)
        self.console.print(f"[green]✓[/] {name} ({self.timings[name]:.0f} s{', ' + how if how else ''})")
        return result

    async def run(self) -> DemoResult:
        config, out = self.config, self.out
        self._check_models()  # before anything is written: a typo is not recorded in the run's settings
        out.mkdir(parents=True, exist_ok=True)
        self._check_settings()
        started = time.perf_counter()
        train_games, held_games = await self.stage("games", self._games)
        self.train_tasks = [g.to_task() for g in train_games]
        self.held_tasks = [g.to_task() for g in held_games]
        self.transitions = await self.stage(
            "offline data",
            lambda: collect_real(config, train_games, out / "offline.jsonl"),
            kept=out / "offline.jsonl",
        )
        explored: list[Transition] = []
        if config.exploration_episodes_per_game or config.explore_solution_branches:
            explored = await self.stage(
                "exploration data",
                lambda: self._exploration(train_games),
                kept=out / "exploration.jsonl",
            )
        # what the experience model learns from and retrieves: the demonstrations and the exploration
        self.grounding = [*self.transitions, *explored]
        self.offline = episodes_of(self.transitions, {t.id: t for t in self.train_tasks})
        self.dream_tasks = starting_where_played(self.train_tasks, self.offline)
        model = config.experience_model
        if model is None:
            path = await self.stage(
                "experience model",
                lambda: self._experience_model(train_games, out / "experience-model"),
                kept=out / "experience-model" / CARD_FILE,
            )
            model = f"hf:{path}"
        seeds: dict[int, _SeedRun] = {}
        async with open_dream_model(config, model, self.grounding, out / "replay") as dream:
            for seed in config.seeds:
                seeds[seed] = await self._seed(seed, dream_env_factory(config, dream), dream)
        self.timings["total"] = round(time.perf_counter() - started, 1)
        return self._report(model, seeds)

    def _check_models(self) -> None:
        from dreamgym_sdk.providers import check_model_string

        if self.config.experience_model is not None:  # a distilled directory may go without hf:
            check_model_string(self.config.experience_model, bare_directories=True)
        if self.config.policy_model is not None:
            check_model_string(f"hf:{self.config.policy_model.removeprefix('hf:')}")

    def _check_settings(self) -> None:
        """Stages are reused from the run directory, so refuse one made with other settings (more or other
        seeds are fine: each seed has its own directory; so is ``allow_idle_arms``, which changes how an
        idle arm is reported, not what any stage makes: the error that names it asks for a re-run with it)."""
        path = self.out / "demo-config.json"
        free = {"seeds", "allow_idle_arms"}
        current = self.config.model_dump(mode="json", exclude=free)
        if path.exists():
            # a setting added since the run was made has its default there (a new field keeps the old way)
            saved = DemoConfig().model_dump(mode="json", exclude=free) | json.loads(path.read_text())
            saved = {k: v for k, v in saved.items() if k not in free}
            changed = sorted(k for k in current.keys() | saved.keys() if current.get(k) != saved.get(k))
            if changed:
                raise ConfigError(
                    f"{self.out} holds a run with other settings ({', '.join(changed)} differ); "
                    "use another --out or the same settings"
                )
        else:
            path.write_text(json.dumps(current, indent=2) + "\n")

    async def _games(self) -> tuple[list[Any], list[Any]]:
        with Progress(console=self.console, transient=True) as bar:
            job = bar.add_task("generating games", total=self.config.train_games + self.config.held_out_games)
            return await make_games(self.config, self.out / "games", lambda _: bar.advance(job))

    async def _exploration(self, games: Sequence[Any]) -> list[Transition]:
        config = self.config
        work = len(games) * (config.exploration_episodes_per_game + config.explore_solution_branches)
        with Progress(console=self.console, transient=True) as bar:
            job = bar.add_task("exploring the training games", total=work)
            path = self.out / "exploration.jsonl"
            return await collect_real(
                config, games, path, exploration=True, on_progress=lambda: bar.advance(job)
            )

    async def _experience_model(self, games: Sequence[Any], directory: Path) -> Path:
        columns = (*Progress.get_default_columns(), TextColumn("{task.fields[loss]}"))
        with Progress(*columns, console=self.console, transient=True) as bar:
            job = bar.add_task("distilling", total=self.config.distill_steps, loss="")

            def report(progress: TrainingProgress) -> None:  # from the training thread
                loss = "" if progress.loss is None else f"loss {progress.loss:.3f}"
                bar.update(job, completed=progress.step, total=progress.total_steps, loss=loss)

            return await train_experience_model(self.config, self.grounding, games, directory, report)

    async def _seed(self, seed: int, dream_envs: EnvFactory, dream: ExperienceModel) -> _SeedRun:
        config, root = self.config, self.out / f"seed-{seed}"
        root.mkdir(exist_ok=True)
        corpus = corpus_of(self.transitions, self.train_tasks)
        sft = await self.stage(
            f"seed {seed}: SFT policy",
            lambda: clone_policy(config, self.offline, corpus, seed, root / "sft"),
            kept=root / "sft",
        )
        run = _SeedRun()
        real_envs = real_env_factory(config)
        run.gap = await self.stage(
            f"seed {seed}: sim-vs-real gap",
            lambda: measure_gap(
                config,
                policy_dir=sft,
                tasks=self.dream_tasks[: config.gap_tasks],
                dream_envs=dream_envs,
                model=dream,
                seed=seed,
                path=root / "gap.json",
            ),
            kept=root / "gap.json",
        )

        async def rl(
            arm: str,
            start: Path,
            envs: EnvFactory,
            tasks: Sequence[Task],
            cap: int | None = None,
            variations: TaskGenerator | None = None,
        ) -> None:
            s2r = arm == "dreamgym-s2r"
            run.rl[arm] = done = await self.stage(
                f"seed {seed}: {arm}",
                lambda: train_rl(
                    config,
                    start=start,
                    env_factory=envs,
                    tasks=tasks,
                    directory=root / arm,
                    iterations=config.s2r_iterations if s2r else config.rl_iterations,
                    tasks_per_iteration=config.s2r_tasks_per_iteration if s2r else config.tasks_per_iteration,
                    seed=seed,
                    real_transitions=cap,
                    variations=variations,
                ),
                kept=arm_dirs(root / arm)[1],
                resumed=arm_dirs(root / arm)[0],
            )
            idle = _idle(done.metrics)
            if idle and not config.allow_idle_arms:
                raise NothingToTrainError(
                    f"seed {seed}: {arm} {'; '.join(idle)}, so its score would be the policy it started "
                    f"from; see {root / arm / 'run' / 'metrics.jsonl'} (--set allow_idle_arms=true reports "
                    "it as a warning instead)"
                )

        await rl("real-rl", sft, real_envs, self.train_tasks)
        variations = StartStateVariations(self.transitions) if config.curriculum else None
        await rl("dreamgym", sft, dream_envs, self.dream_tasks, variations=variations)
        cap = max(1, int(config.real_share_cap * run.rl["real-rl"].real_transitions))
        await rl("dreamgym-s2r", run.rl["dreamgym"].policy_dir, real_envs, self.train_tasks, cap)
        await self.stage(f"seed {seed}: evaluation", lambda: self._evaluate(seed, root, sft, run))
        return run

    async def _evaluate(self, seed: int, root: Path, sft: Path, run: _SeedRun) -> None:
        paths: dict[str, Path | None] = {"random": None, "sft": sft} | {
            a: r.policy_dir for a, r in run.rl.items()
        }
        for mode in MODES:
            run.reports[mode] = {}
            for arm in ARMS:
                path, config = paths[arm], self.config
                policy = (
                    RandomPolicy(seed=seed)
                    if path is None
                    else await load_policy(path, config, seed, greedy=mode == "greedy")
                )
                file = root / f"eval-{mode}-{arm}.json"
                report = await evaluate_policy(config, policy, self.held_tasks, seed, file)
                run.reports[mode][arm] = report
                self.console.print(
                    f"  {mode:>7} {arm}: {report.success_rate:.1%} of {report.episodes} episodes"
                )

    def _report(self, model: str, seeds: dict[int, _SeedRun]) -> DemoResult:
        config, out, console = self.config, self.out, self.console
        rl_real = {
            arm: [s.rl[arm].real_transitions if arm in s.rl else 0 for s in seeds.values()] for arm in ARMS
        }
        reports = {
            mode: {arm: [s.reports[mode][arm] for s in seeds.values()] for arm in ARMS} for mode in MODES
        }
        rows = {mode: summarise(reports[mode], rl_real) for mode in MODES}
        differences = {mode: compare(reports[mode]) for mode in MODES}
        throughput = {
            arm: statistics.fmean(rates)
            for arm in ("real-rl", "dreamgym", "dreamgym-s2r")
            if (rates := [m["steps_per_s"] for r in seeds.values() if arm in r.rl for m in r.rl[arm].metrics])
        }
        real_share = statistics.fmean(rl_real["dreamgym-s2r"]) / max(
            1.0, statistics.fmean(rl_real["real-rl"])
        )
        checks = {"s2r_real_transitions_within_cap": real_share <= config.real_share_cap}
        for mode in MODES:
            diff = {name: d.difference for name, d in differences[mode].items()}
            checks[f"real_rl_beats_sft ({mode})"] = diff["real-rl − sft"] > 0
            checks[f"dreamgym_beats_sft ({mode})"] = diff["dreamgym − sft"] > 0
            checks[f"s2r_matches_or_beats_real_rl ({mode})"] = diff["dreamgym-s2r − real-rl"] >= 0
        idle = [
            f"seed {seed}: {arm} {problem}"
            for seed, run in seeds.items()
            for arm, arm_run in run.rl.items()
            for problem in _idle(arm_run.metrics)
        ]
        result = DemoResult(
            config=config,
            offline_transitions=len(self.transitions),
            exploration_transitions=len(self.grounding) - len(self.transitions),
            experience_model=model,
            arms=rows,
            differences=differences,
            gaps={str(seed): run.gap for seed, run in seeds.items() if run.gap is not None},
            real_share=real_share,
            steps_per_s=throughput,
            runs={
                str(seed): {
                    arm: {
                        "eval": {mode: run.reports[mode][arm].model_dump(mode="json") for mode in MODES},
                        "rl_real_transitions": rl_real[arm][i],
                        "rl_metrics": run.rl[arm].metrics if arm in run.rl else [],
                    }
                    for arm in ARMS
                }
                for i, (seed, run) in enumerate(seeds.items())
            },
            checks=checks,
            warnings=idle,
            timings_s=self.timings,
            versions=package_versions(),
        )
        (out / "results.json").write_text(json.dumps(result.model_dump(mode="json"), indent=2) + "\n")
        curves = {
            arm: [run.rl[arm].metrics for run in seeds.values()]
            for arm in ("real-rl", "dreamgym", "dreamgym-s2r")
        }
        plot = plot_results(rows, curves, out / "results.png")
        for mode in MODES:
            console.print(
                results_table(rows[mode], result.offline_transitions, mode, result.exploration_transitions)
            )
            console.print(differences_table(differences[mode], mode))
        for name, held in checks.items():
            console.print(
                f"  {'[green]holds' if held else '[red]does not hold'}[/]: {name.replace('_', ' ')}"
            )
        for seed, run in seeds.items():
            if run.gap is not None:
                console.print(_gap_line(seed, run.gap))
        for seed, run in seeds.items():
            if config.curriculum and "dreamgym" in run.rl:
                console.print(_curriculum_line(seed, run.rl["dreamgym"].metrics))
        for warning in idle:
            console.print(f"  [bold red]warning[/]: {warning}: its score is the policy it started from")
        console.print(f"S2R used {real_share:.1%} of real-environment RL's real transitions")
        if throughput:
            console.print(_throughput_line(throughput))
        console.print(f"results: {out / 'results.json'}, plot: {plot}")
        console.print("versions: " + ", ".join(f"{name} {v}" for name, v in result.versions.items()))
        return result


def _gap_line(seed: int, gap: SimRealGap) -> str:
    real, synthetic = gap.real, gap.synthetic
    return (
        f"seed {seed}: the SFT policy on training games succeeds in {real.success_rate:.0%} of real and"
        f" {synthetic.success_rate:.0%} of synthetic episodes ({gap.success_gap * 100:+.0f} pts); mean length"
        f" {real.mean_steps:.1f} real, {synthetic.mean_steps:.1f} synthetic; replaying its real steps, the"
        f" experience model predicts {gap.reward_agreement:.0%} of rewards and {gap.done_agreement:.0%} of"
        " endings"
        + (
            f"; {gap.wm2real:.0%} of its synthetic successes also win the real game (WM2Real)"
            if gap.wm2real is not None and gap.synthetic.successes
            else ""
        )
    )


def _throughput_line(steps_per_s: dict[str, float]) -> str:
    kinds = {"real-rl": "real", "dreamgym": "synthetic", "dreamgym-s2r": "real"}
    rates = ", ".join(f"{arm} {rate:.1f} {kinds[arm]}" for arm, rate in steps_per_s.items())
    return f"rollout steps per second (mean over updates): {rates}"


def _curriculum_line(seed: int, metrics: Sequence[dict[str, float]]) -> str:
    def total(key: str) -> int:
        return int(sum(m.get(key, 0.0) for m in metrics))

    reasons = sorted({k for m in metrics for k in m if k.startswith("tasks_rejected/")})
    rejected = ", ".join(f"{total(k)} {k.split('/', 1)[1].replace('_', ' ')}" for k in reasons)
    rejected = f" ({rejected})" if rejected else ""
    shares = " ".join(f"{m.get('synthetic_task_share', 0.0):.0%}" for m in metrics)
    return (
        f"seed {seed}: DreamGym's curriculum proposed {total('tasks_proposed')} variations, accepted"
        f" {total('tasks_accepted')}, rejected {total('tasks_rejected')}{rejected};"
        f" generated tasks' share per update: {shares or 'none'}"
    )


def _idle(metrics: Sequence[dict[str, float]]) -> list[str]:
    """What makes an RL stage untrained: no usable episode, or no optimizer step, in all its iterations."""
    if not metrics:
        return ["ran no iteration (its budget did not cover one group's worst case)"]
    problems: list[str] = []
    if sum(m.get("episodes", 0.0) for m in metrics) == 0:
        failed = int(sum(m.get("failed_episodes", 0.0) for m in metrics))
        problems.append(f"played no usable episode ({failed} dropped)")
    elif sum(m.get("train/optimizer_steps", 0.0) for m in metrics) == 0:
        problems.append("took no optimizer step (every group had equal rewards)")
    return problems
