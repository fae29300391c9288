"""The decode thread policy: it picks the faster thread count from token times, keeps lost
probes within budget, follows a change of load, and generation restores the caller's count."""

import pytest
import torch

from llmlab import ByteTokenizer, ModelConfig, build_model
from llmlab.generation import generate
from llmlab.generation import threads as decode_threads
from llmlab.generation.stepper import Stepper
from llmlab.generation.threads import PROBE_BUDGET, ThreadPolicy, candidates


def run(policy: ThreadPolicy, cost: dict[int, float], tokens: int) -> list[int]:
    """Feed the policy ``tokens`` token times from ``cost`` (seconds per thread count);
    returns the count each token ran at."""
    used = []
    for _ in range(tokens):
        n = policy.threads
        used.append(n)
        policy.observe(cost[n])
    return used


def test_candidates_halve_down_to_one():
    assert candidates(1) == (1,)
    assert candidates(2) == (2, 1)
    assert candidates(6) == (6, 3, 1)


@pytest.mark.parametrize("bad", [0, -2])
def test_candidates_refuse_non_positive_counts(bad):
    with pytest.raises(ValueError, match="at least 1"):
        candidates(bad)


def test_a_busy_machine_settles_on_one_thread_quickly():
    policy = ThreadPolicy((2, 1))
    used = run(policy, {2: 0.030, 1: 0.004}, 400)  # two threads wait on a busy core
    assert used[:10].count(1) >= 3, used[:10]  # the first probe comes within a few tokens
    assert policy.current == 1
    time_spent = sum(0.030 if n == 2 else 0.004 for n in used)
    assert time_spent < 1.1 * 400 * 0.004 + 6 * 0.030  # a few slow tokens, then no more


def test_an_idle_machine_keeps_the_most_threads_and_probes_within_budget():
    policy = ThreadPolicy((2, 1))
    cost = {2: 0.004, 1: 0.0065}  # two threads read the weights faster
    used = run(policy, cost, 3000)
    assert policy.current == 2
    lost = sum(cost[n] - cost[2] for n in used)
    assert lost < 2 * PROBE_BUDGET * 3000 * cost[2]
    assert used[-1000:].count(1) <= 3


def test_the_policy_follows_a_change_of_load_both_ways():
    policy = ThreadPolicy((2, 1))
    run(policy, {2: 0.004, 1: 0.0065}, 300)
    assert policy.current == 2
    run(policy, {2: 0.040, 1: 0.005}, 2 * policy.wait + 10)  # a training starts beside it
    assert policy.current == 1
    run(policy, {2: 0.004, 1: 0.0065}, 2 * policy.wait + 10)  # and stops
    assert policy.current == 2


def test_noise_alone_does_not_flip_the_choice():
    policy = ThreadPolicy((2, 1))
    times = iter([0.004, 0.0041, 0.0039, 0.0042] * 500)
    for _ in range(2000):
        policy.observe(next(times) if policy.threads == 2 else 0.0041)  # equal speed
    assert policy.current == 2


def test_more_than_two_counts_are_each_tried():
    policy = ThreadPolicy((4, 2, 1))
    used = run(policy, {4: 0.010, 2: 0.003, 1: 0.006}, 200)
    assert policy.current == 2 and {4, 2, 1} <= set(used)


@pytest.fixture()
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    decode_threads._POLICIES.clear()
    yield
    torch.set_num_threads(before)
    decode_threads._POLICIES.clear()


def test_generation_restores_the_callers_count_and_tokens_do_not_depend_on_it(two_threads):
    tok = ByteTokenizer()
    model = build_model(ModelConfig.preset("baby-char", vocab_size=tok.vocab_size), seed=0).eval()
    prompts = ["To be", "or not"]
    reference = [g.token_ids for g in generate(model, tok, prompts, max_new_tokens=12,
                                               temperature=0, stop_token_ids=[])]
    seen = []
    (policy,) = decode_threads._POLICIES.values()
    policy.current = 1  # as after a busy spell: decode at one thread
    stream = generate(model, tok, prompts, max_new_tokens=12, temperature=0, stop_token_ids=[],
                      stream="events")
    for _ in stream:
        seen.append(torch.get_num_threads())  # the caller's code between tokens
    assert set(seen) == {2} and torch.get_num_threads() == 2
    assert [g.token_ids for g in stream.result] == reference


def test_load_arriving_after_a_long_idle_stretch_is_answered_within_a_few_tokens():
    """After thousands of idle tokens the wait between probes is long; a sudden slowdown of
    the chosen count must not sit that wait out."""
    policy = ThreadPolicy((2, 1))
    run(policy, {2: 0.004, 1: 0.0065}, 5000)
    assert policy.current == 2 and policy.wait > 100
    used = run(policy, {2: 0.040, 1: 0.005}, 30)  # a training starts beside it
    assert policy.current == 1 and used[-15:].count(2) == 0, used


def test_beam_search_decodes_at_the_policys_count_and_restores_the_callers(two_threads,
                                                                           monkeypatch):
    tok = ByteTokenizer()
    model = build_model(ModelConfig.preset("baby-char", vocab_size=tok.vocab_size), seed=0).eval()
    reference = generate(model, tok, "To be", max_new_tokens=10, num_beams=3,
                         stop_token_ids=[]).token_ids
    (key,) = decode_threads._POLICIES   # one policy: 1 prompt x 3 beams
    assert key[-2] == 3
    policy = decode_threads._POLICIES[key]
    policy.current, policy.probe, policy.countdown = 1, None, 10**6  # settled on one, no probe
    counts = []
    real_step = Stepper.step

    def spy(self, *args, **kwargs):
        counts.append(torch.get_num_threads())
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(Stepper, "step", spy)
    again = generate(model, tok, "To be", max_new_tokens=10, num_beams=3,
                     stop_token_ids=[]).token_ids
    assert again == reference and torch.get_num_threads() == 2
    assert len(counts) == 9 and set(counts) == {1}  # every cached step at one thread
