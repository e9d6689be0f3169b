"""WM2Real: synthetic episodes' actions replayed in the real TextWorld game."""

from __future__ import annotations

from dreamgym_sdk import Episode, Source, Transition
from dreamgym_sdk.integrations.textworld import GameInfo, TextWorldEnv
from dreamgym_sdk.training import replay_actions, wm2real


def _claimed(game: GameInfo, actions: list[str], rewards: list[float]) -> Episode:
    """A synthetic episode that claims ``rewards`` for ``actions`` and a win at the last one."""
    task = game.to_task()
    transitions = tuple(
        Transition(
            task_id=task.id,
            episode_id="e",
            step=i,
            state=f"state {i}",
            action=action,
            next_state=f"state {i + 1}",
            reward=reward,
            terminated=i == len(actions) - 1,
            success=i == len(actions) - 1,
        )
        for i, (action, reward) in enumerate(zip(actions, rewards, strict=True))
    )
    return Episode(task=task, source=Source.SYNTHETIC, initial_state="state 0", transitions=transitions)


async def _real_rewards(game: GameInfo) -> list[float]:
    env = TextWorldEnv(max_steps=20)
    await env.reset(task=game.to_task())
    rewards = [(await env.step(action)).reward for action in game.walkthrough]
    await env.close()
    return rewards


async def test_the_walkthrough_agrees_everywhere(cooking_games: list[GameInfo]) -> None:
    game = cooking_games[0]
    episode = _claimed(game, list(game.walkthrough), await _real_rewards(game))
    replay = await replay_actions(episode, TextWorldEnv(max_steps=20))
    assert replay.success and replay.replay_success
    assert replay.divergence is None
    assert replay.replay_steps == len(game.walkthrough)


async def test_a_lenient_win_is_caught_where_it_starts(cooking_games: list[GameInfo]) -> None:
    game = cooking_games[0]
    real = await _real_rewards(game)
    honest = _claimed(game, list(game.walkthrough), real)
    # the model scored a look as if it fetched the ingredient, and let the meal be made without it
    fetch = next(i for i, reward in enumerate(real) if reward > 0)
    actions = list(game.walkthrough)
    actions[fetch] = "look"
    lenient = _claimed(game, actions, real)
    report = await wm2real([honest, lenient], lambda _: TextWorldEnv(max_steps=20))

    assert (report.episodes, report.synthetic_successes, report.real_successes_of_synthetic) == (2, 2, 1)
    assert report.wm2real == 0.5 and report.agreement == 0.5
    caught = report.replays[1]
    assert caught.episode_id == lenient.id and not caught.replay_success
    assert (caught.divergence, caught.divergent_action) == (fetch, "look")
    assert report.divergent_verbs == {"look": 1}
    assert caught.replay_observation and caught.recorded_observation
