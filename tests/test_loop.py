"""The DreamGym loop: iterations end to end, curriculum growth, events, budgets, resume after a kill."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from dreamgym_sdk import DreamEnv, EventBus, ExperienceRequest, PolicyUpdated, Task, TaskAccepted
from dreamgym_sdk.curriculum import Curriculum, CurriculumConfig, TaskPool
from dreamgym_sdk.errors import ConfigError, ModelOutputError, NothingToTrainError
from dreamgym_sdk.experience.tasks import TaskVariationGenerator
from dreamgym_sdk.testing import FunctionExperienceModel, FunctionPolicy, FunctionProvider, RecordingTrainer
from dreamgym_sdk.training.evaluate import EvalReport, evaluate, wilson_interval
from dreamgym_sdk.training.loop import Budget, DreamGymTrainer, LoopConfig, iteration_metrics


def coin_world(req: ExperienceRequest) -> dict[str, Any]:
    """One step; the policy's action decides success."""
    won = req.action == "win"
    return {"next_state": "end", "reward": float(won), "done": True, "success": won}


class CheckpointedTrainer(RecordingTrainer):
    def __init__(self) -> None:
        super().__init__()
        self.loaded: int | None = None

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        (directory / "updates.json").write_text(json.dumps(self.updates))

    def load(self, directory: Path) -> None:
        self.loaded = self.updates = json.loads((directory / "updates.json").read_text())


def random_policy(seed: int) -> FunctionPolicy:
    rng = random.Random(seed)
    return FunctionPolicy(lambda task, obs, history, info: rng.choice(["win", "lose"]))


def recording_trainer(
    model: FunctionExperienceModel, tasks: list[Task], run_dir: Path, config: LoopConfig
) -> DreamGymTrainer:
    """A loop over ``tasks`` in DreamEnvs of ``model``, a random policy and a recording backend."""
    return DreamGymTrainer(
        env_factory=lambda g: DreamEnv(model, group=g),
        policy=random_policy(0),
        backend=RecordingTrainer(),
        curriculum=TaskPool(tasks),
        run_dir=run_dir,
        config=config,
    )


def variations(request: Any) -> str:
    n = len(request.messages[-1].content)
    return json.dumps({"candidates": [{"instruction": f"harder variation number {n} of the task",
                                       "rationale": "", "difficulty": "harder", "feasible": True,
                                       "feasibility_check": "same objects"}]})  # fmt: skip


async def test_two_iterations_end_to_end(tmp_path: Path) -> None:
    model = FunctionExperienceModel(coin_world, initial_state="start")
    pool = TaskPool(
        [Task(id=f"t{i}", instruction=f"seed task number {i}") for i in range(4)],
        path=tmp_path / "tasks.jsonl",
    )
    curriculum = Curriculum(
        pool,
        TaskVariationGenerator(FunctionProvider(variations)),
        CurriculumConfig(group_size=8, seeds_per_iteration=2, synthetic_share=0.5),
    )
    backend = CheckpointedTrainer()
    seen: list[dict[str, float]] = []
    async with EventBus() as bus:
        events = bus.subscribe(PolicyUpdated, TaskAccepted, maxsize=1000)
        trainer = DreamGymTrainer(
            env_factory=lambda g: DreamEnv(model, bus=bus, group=g),
            policy=random_policy(0),
            backend=backend,
            curriculum=curriculum,
            run_dir=tmp_path / "run",
            config=LoopConfig(
                tasks_per_iteration=4, group_size=8, budget=Budget(iterations=2), progress=False
            ),
            bus=bus,
            on_metrics=[seen.append],
        )
        history = await trainer.run()
        bus.close()
        kinds = [type(e).__name__ async for e in events]
    assert [m["iteration"] for m in history] == [1.0, 2.0] and seen == history
    assert all(m["episodes"] == 32 for m in history)
    assert len(backend.episodes) == 64  # the backend observed every episode before each update
    assert history[0]["train/episodes"] == 32.0
    assert 0 < history[0]["success_rate"] < 1 and history[0]["group_reward_variance"] > 0
    assert kinds.count("PolicyUpdated") == 2 and kinds.count("TaskAccepted") >= 1
    assert len(pool) > 4 and len(pool.synthetic_tasks) == kinds.count("TaskAccepted")
    # what the curriculum did, per iteration: proposed = accepted + rejected (by reason)
    first, second = history
    assert first["synthetic_task_share"] == 0.0, "no variation exists before the first expansion"
    assert second["synthetic_task_share"] == min(2, first["tasks_accepted"]) / 4, "λ = 0.5 of 4 tasks"
    for m in history:
        reasons = sum(v for k, v in m.items() if k.startswith("tasks_rejected/"))
        assert (
            m["tasks_proposed"] == m["tasks_accepted"] + m["tasks_rejected"]
            and reasons == m["tasks_rejected"]
        )
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["iteration"] for ln in lines] == [1.0, 2.0]
    assert json.loads((tmp_path / "run" / "state.json").read_text())["iteration"] == 2


async def test_budget_on_real_transitions_stops_the_run(tmp_path: Path) -> None:
    model = FunctionExperienceModel(coin_world, initial_state="start")
    from dreamgym_sdk import RecordingEnv

    trainer = DreamGymTrainer(
        env_factory=lambda g: RecordingEnv(DreamEnv(model)),  # stands in for a real env: source="real"
        policy=random_policy(1),
        backend=RecordingTrainer(),
        curriculum=TaskPool([Task(instruction="real task one")]),
        run_dir=tmp_path,
        config=LoopConfig(
            tasks_per_iteration=1,
            group_size=4,
            progress=False,
            budget=Budget(iterations=None, real_transitions=10),
        ),
    )
    history = await trainer.run()
    assert len(history) == 3  # 4 real transitions per iteration: 4, 8, 12 >= 10
    assert trainer.totals["real_transitions"] == 12


SCRIPT = """
import anyio, json, random, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_loop import CheckpointedTrainer, coin_world, random_policy
from dreamgym_sdk import DreamEnv, Task
from dreamgym_sdk.curriculum import TaskPool
from dreamgym_sdk.testing import FunctionExperienceModel
from dreamgym_sdk.training.loop import Budget, DreamGymTrainer, LoopConfig

run = Path(sys.argv[1])
trainer = DreamGymTrainer(
    env_factory=lambda g: DreamEnv(FunctionExperienceModel(coin_world, initial_state="s")),
    policy=random_policy(0), backend=CheckpointedTrainer(),
    curriculum=TaskPool([Task(id="t", instruction="a task")]), run_dir=run,
    config=LoopConfig(tasks_per_iteration=2, group_size=2, progress=False, budget=Budget(iterations=10_000)),
    on_metrics=[lambda m: print(int(m["iteration"]), flush=True)],
)
anyio.run(trainer.run)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
async def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT.format(tests=str(Path(__file__).parent))))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(run)], stdout=subprocess.PIPE, text=True)  # noqa: ASYNC220
    assert proc.stdout is not None
    for line in proc.stdout:  # wait for a few finished iterations, then kill -9 mid-run
        if int(line) >= 3:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = json.loads((run / "state.json").read_text())
    done = state["iteration"]
    assert done >= 3
    backend = CheckpointedTrainer()
    trainer = DreamGymTrainer(
        env_factory=lambda g: DreamEnv(FunctionExperienceModel(coin_world, initial_state="s")),
        policy=random_policy(0),
        backend=backend,
        curriculum=TaskPool([Task(id="t", instruction="a task")]),
        run_dir=run,
        config=LoopConfig(
            tasks_per_iteration=2, group_size=2, progress=False, budget=Budget(iterations=done + 2)
        ),
    )
    history = await trainer.run()
    assert backend.loaded == done  # the backend's checkpoint of the last finished iteration
    assert [m["iteration"] for m in history] == [done + 1, done + 2]
    iterations = [json.loads(ln)["iteration"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert iterations == list(range(1, done + 3))  # no iteration lost, none duplicated


async def test_a_kill_between_checkpoint_and_state_resumes_from_the_committed_iteration(
    tmp_path: Path,
) -> None:
    def trainer(backend: CheckpointedTrainer, iterations: int) -> DreamGymTrainer:
        return DreamGymTrainer(
            env_factory=lambda g: DreamEnv(FunctionExperienceModel(coin_world, initial_state="s")),
            policy=random_policy(0),
            backend=backend,
            curriculum=TaskPool([Task(id="t", instruction="a task")]),
            run_dir=tmp_path,
            config=LoopConfig(group_size=2, progress=False, budget=Budget(iterations=iterations)),
        )

    await trainer(CheckpointedTrainer(), 1).run()
    committed = (tmp_path / "state.json").read_text()
    await trainer(CheckpointedTrainer(), 2).run()
    # what a kill leaves after iteration 2's checkpoint was swapped in but before its state was written
    shutil.copytree(tmp_path / "checkpoint", tmp_path / "checkpoint.old")
    (tmp_path / "checkpoint.old" / "updates.json").write_text("1")
    (tmp_path / "checkpoint.old" / "loop-iteration").write_text("1")
    (tmp_path / "state.json").write_text(committed)
    backend = CheckpointedTrainer()
    await trainer(backend, 2).run()
    assert backend.loaded == 1  # the checkpoint of the iteration the state committed, not the newer one


class SlowCheckpointTrainer(CheckpointedTrainer):
    """Saving and loading block their thread for a while, as writing real weights does."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = False

    def save(self, directory: Path) -> None:
        self.busy = True
        time.sleep(0.3)
        super().save(directory)
        self.busy = False

    def load(self, directory: Path) -> None:
        self.busy = True
        time.sleep(0.3)
        super().load(directory)
        self.busy = False


async def test_checkpoints_save_and_load_off_the_event_loop(tmp_path: Path) -> None:
    backend = SlowCheckpointTrainer()
    ticks = saving = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += backend.busy  # the loop got a turn while the backend was saving or loading

    def trainer(iterations: int) -> DreamGymTrainer:
        return DreamGymTrainer(
            env_factory=lambda g: DreamEnv(FunctionExperienceModel(coin_world, initial_state="s")),
            policy=random_policy(0),
            backend=backend,
            curriculum=TaskPool([Task(id="t", instruction="a task")]),
            run_dir=tmp_path,
            config=LoopConfig(
                tasks_per_iteration=2, group_size=2, progress=False, budget=Budget(iterations=iterations)
            ),
        )

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await trainer(1).run()  # saves a checkpoint
        saving = ticks
        await trainer(2).run()  # loads it, then saves another
        tg.cancel_scope.cancel()
    assert saving > 0 and ticks > saving and backend.loaded is not None


def test_a_backend_or_curriculum_with_another_group_size_is_refused(tmp_path: Path) -> None:
    class Sized(RecordingTrainer):
        config = LoopConfig(group_size=2)

    pool = TaskPool([Task(instruction="flip")])
    common: dict[str, Any] = {
        "env_factory": lambda g: DreamEnv(FunctionExperienceModel(coin_world)),
        "policy": random_policy(0),
        "run_dir": tmp_path,
        "config": LoopConfig(group_size=4),
    }
    with pytest.raises(ConfigError, match=r"backend's group_size \(2\) differs from the loop's \(4\)"):
        DreamGymTrainer(backend=Sized(), curriculum=pool, **common)
    generator = TaskVariationGenerator(FunctionProvider(variations))
    curriculum = Curriculum(pool, generator, CurriculumConfig(group_size=8))
    with pytest.raises(ConfigError, match="curriculum's group_size"):
        DreamGymTrainer(backend=RecordingTrainer(), curriculum=curriculum, **common)


def test_iteration_metrics_and_wilson() -> None:
    assert iteration_metrics([])["episodes"] == 0.0
    low, high = wilson_interval(8, 10)
    assert 0.49 < low < 0.5 and 0.94 < high < 0.95
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_wilson_interval_contains_the_rate_despite_rounding() -> None:
    # 6/6 gave an upper bound of 0.9999999999999999, and the demo's plot a negative error bar.
    for n in range(1, 300):
        for successes in range(n + 1):
            low, high = wilson_interval(successes, n)
            assert 0.0 <= low <= successes / n <= high <= 1.0, (successes, n)


async def test_evaluate_reports_success_with_interval() -> None:
    model = FunctionExperienceModel(coin_world, initial_state="s")
    report = await evaluate(
        lambda g: DreamEnv(model), random_policy(3), [Task(instruction="x")], episodes_per_task=40
    )
    assert isinstance(report, EvalReport) and report.episodes == 40
    assert report.ci95[0] <= report.success_rate <= report.ci95[1]
    assert 0 < report.successes < 40


async def test_an_unusable_model_answer_drops_its_episode_not_the_iteration(tmp_path: Path) -> None:
    def flaky_world(req: ExperienceRequest) -> dict[str, Any]:
        if req.task.id == "t0":
            raise ModelOutputError("no JSON object", raw_text="I think the fridge opens", attempts=3)
        return coin_world(req)

    tasks = [Task(id=f"t{i}", instruction=f"task {i}") for i in range(2)]
    model = FunctionExperienceModel(flaky_world, initial_state="start")

    def trainer(run: str, config: LoopConfig) -> DreamGymTrainer:
        return recording_trainer(model, tasks, tmp_path / run, config)

    config = LoopConfig(tasks_per_iteration=2, group_size=3, budget=Budget(iterations=1), progress=False)
    [metrics] = await trainer("lenient", config).run()
    assert metrics["failed_episodes"] == 3 and metrics["episodes"] == 3
    with pytest.raises(ExceptionGroup) as raised:
        await trainer("strict", config.model_copy(update={"skip_failed_episodes": False})).run()
    assert raised.group_contains(ModelOutputError)


async def test_an_iteration_with_nothing_to_train_on_is_an_error_unless_allowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_world(req: ExperienceRequest) -> dict[str, Any]:
        raise ModelOutputError("no JSON object", raw_text="the fridge", attempts=3)

    model = FunctionExperienceModel(broken_world, initial_state="start")

    def trainer(run: str, config: LoopConfig) -> DreamGymTrainer:
        return recording_trainer(model, [Task(id="t0", instruction="task 0")], tmp_path / run, config)

    config = LoopConfig(tasks_per_iteration=1, group_size=2, budget=Budget(iterations=2), progress=False)
    with pytest.raises(ExceptionGroup) as raised:
        await trainer("strict", config).run()
    assert raised.group_contains(NothingToTrainError, match="iteration 1 played no usable episode")
    allowed = config.model_copy(update={"allow_idle_iterations": True})
    with caplog.at_level("WARNING", logger="dreamgym_sdk"):
        history = await trainer("lenient", allowed).run()
    assert [m["episodes"] for m in history] == [0.0, 0.0]
    assert history[-1]["total/idle_iterations"] == 2.0
    assert "played no usable episode" in caplog.text


class IdleTrainer(RecordingTrainer):
    """A backend whose updates find nothing to learn from (every group had equal rewards)."""

    async def update(self) -> dict[str, float] | None:
        await super().update()
        return {"optimizer_steps": 0.0, "groups_zero_std": 1.0}


async def test_an_update_without_an_optimizer_step_is_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = FunctionExperienceModel(coin_world, initial_state="start")
    run = DreamGymTrainer(
        env_factory=lambda g: DreamEnv(model, group=g),
        policy=random_policy(0),
        backend=IdleTrainer(),
        curriculum=TaskPool([Task(id="t0", instruction="task 0")]),
        run_dir=tmp_path,
        config=LoopConfig(tasks_per_iteration=1, group_size=2, budget=Budget(iterations=1), progress=False),
    )
    with caplog.at_level("WARNING", logger="dreamgym_sdk"):
        [metrics] = await run.run()
    assert metrics["total/idle_updates"] == 1.0
    assert "update took no optimizer step" in caplog.text
