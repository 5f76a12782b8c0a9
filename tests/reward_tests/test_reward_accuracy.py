"""Tests of the accuracy reward and is_equivalent (math-verify behind a size guard)."""

import threading
import time

import pytest

from rewards.accuracy import (
    AccuracyReward,
    QuickCheck,
    check_answers,
    clear_verdict_cache,
    is_equivalent,
    normalize_answer,
    quick_check,
)

EQUIVALENT = [
    (r"\frac{1}{2}", "0.5"),
    ("0.5", r"\frac{1}{2}"),
    ("1/2", r"\frac{1}{2}"),
    ("0.5", "1/2"),
    ("2x+1", "1+2x"),
    ("1+2x", "2x+1"),
    ("3.0", "3"),
    (r"\boxed{3}", "3"),
    ("$-7$", "-7"),
    ("\u22127", "-7"),  # unicode minus
    ("1,000", "1000"),
    ("1{,}000", "1000"),
    (r"1\,000", "1000"),
    ("1 000", "1000"),
    ("5.", "5"),
    ("x=5", "5"),
    ("The answer is 5", "5"),
    (r"\dfrac{3}{4}", "3/4"),
    ("0.75", "3/4"),
    ("2^{10}", "1024"),
    ("2**10", "1024"),
    (r"\sqrt{2}", "2^{1/2}"),
    (r"2\sqrt{2}", r"\sqrt{8}"),
    (r"\{1,2\}", r"\{2,1\}"),
    (r"\infty", r"\infty"),
    ("yes", "yes"),
]

NOT_EQUIVALENT = [
    ("4", "3"),
    ("2x+2", "2x+1"),
    ("-7", "7"),
    ("0.33", r"\frac{1}{3}"),
    ("1 000", "0"),
    ("9**9", "9"),
    ("The answer is 5 or 6", "5"),
    (r"\frac{1}{0}", "1"),
    ("", "1"),
    ("{", "1"),
]


@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "isolated"])
@pytest.mark.parametrize(("pred", "gold"), EQUIVALENT)
def test_is_equivalent_true(pred, gold, isolate):
    assert is_equivalent(pred, gold, isolate=isolate) is True


@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "isolated"])
@pytest.mark.parametrize(("pred", "gold"), NOT_EQUIVALENT)
def test_is_equivalent_false(pred, gold, isolate):
    assert is_equivalent(pred, gold, isolate=isolate) is False


def test_is_equivalent_non_strings():
    assert is_equivalent(None, "1") is False  # type: ignore[arg-type]
    assert is_equivalent("1", 1) is False  # type: ignore[arg-type]


def test_normalize_answer():
    assert normalize_answer(r" $\boxed{1{,}000}$. ") == "1000"
    assert normalize_answer(r"\(x^2\)") == "x^2"
    assert normalize_answer("3**2") == "3^2"


@pytest.mark.parametrize(
    "hostile",
    [
        "9**9**9**9",
        "9^{9^{9^9}}",
        "10^{10^{10}}",
        "x^{10^{10}}",
        r"\binom{1000000}{500000}",
        r"\Gamma(1000000000)",
        r"\gcd(10^{100000}, 3)",
        "1000000!",
        r"\operatorname{zeros}(100000, 100000)",
        r"\begin{pmatrix}1&1\\1&0\end{pmatrix}^{1000000000}",
        "__import__('os').system('echo hi')",
        "\x00",
        "\ud800",
        "1" * 5000,
    ],
)
@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "isolated"])
def test_is_equivalent_hostile_is_false_and_fast(hostile, isolate):
    start = time.perf_counter()
    assert is_equivalent(hostile, "1", isolate=isolate, timeout_seconds=1.0) is False
    assert time.perf_counter() - start < 1.5


def test_is_equivalent_off_the_main_thread():
    """math-verify's SIGALRM timeouts cannot be used off the main thread; it must still work."""
    results = {}

    def work():
        results["ok"] = is_equivalent(r"\frac{1}{2}", "0.5")
        results["bad"] = is_equivalent("9^{9^{9^9}}", "1")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert results == {"ok": True, "bad": False}


def test_reward_scores_string_and_chat_completions():
    reward = AccuracyReward()
    completions = [
        "<think>half of one</think> <answer>0.5</answer>",
        [{"role": "assistant", "content": r"<think>x</think> The answer is $\boxed{\frac12}$."}],
        "<think>x</think> <answer>0.4</answer>",
        "I don't know",
    ]
    assert reward(completions=completions, answer=[r"\frac{1}{2}"] * 4) == [1.0, 1.0, 0.0, 0.0]


def test_reward_uses_prefill_to_find_the_answer_region():
    reward = AccuracyReward()
    # Without the prefill the block is not closed, so the draft answer inside the thinking would count.
    completion = "draft <answer>3</answer></think> <answer>4</answer>"
    assert reward(completions=[completion], answer=["4"], prefill=["<think>"]) == [1.0]
    thinking_only = "I think it is <answer>4</answer></think> but I never answer"
    assert reward(completions=[thinking_only], answer=["4"], prefill=["<think>\n"]) == [0.0]


def test_reward_accepts_and_ignores_trl_kwargs():
    reward = AccuracyReward()
    out = reward(
        prompts=["p"],
        completions=["<answer>-7</answer>"],
        completion_ids=[[1, 2]],
        trainer_state=object(),
        answer=["-7"],
        unrelated=["z"],
    )
    assert out == [1.0]


def test_reward_logs_extracted_answers_and_metric():
    extra: dict[str, list] = {}
    metrics: dict[str, float] = {}
    reward = AccuracyReward()
    out = reward(
        completions=["<answer>2</answer>", "nothing", r"\boxed{3}"],
        answer=["2", "2", "2"],
        log_extra=lambda column, values: extra.setdefault(column, []).extend(values),
        log_metric=metrics.__setitem__,
    )
    assert out == [1.0, 0.0, 0.0]
    assert extra == {"extracted_answer": ["2", "", "3"]}
    assert metrics["accuracy/extract_rate"] == pytest.approx(2 / 3)


def test_reward_survives_broken_log_callbacks():
    def boom(*args):
        raise RuntimeError("logger down")

    assert AccuracyReward()(
        completions=["<answer>1</answer>"], answer=["1"], log_extra=boom, log_metric=boom
    ) == [1.0]


def test_reward_missing_or_bad_gold_scores_zero():
    reward = AccuracyReward()
    assert reward(completions=["<answer>1</answer>"]) == [0.0]
    assert reward(completions=["<answer>1</answer>", "<answer>1</answer>"], answer=["1"]) == [1.0, 0.0]
    assert reward(completions=["<answer>1</answer>"], answer=[None]) == [0.0]
    assert reward(completions=["<answer>5</answer>"], answer=[5]) == [1.0]  # non-string gold is str()-ed


def test_reward_hostile_completions():
    reward = AccuracyReward()
    hostile = [
        "a" * 1_000_000,
        r"\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}",
        "<answer>\x00</answer>",
        "<answer>\ud800</answer>",
        "<answer>__import__('os').system('echo hi')</answer>",
        "<answer>9**9**9**9</answer>",
        r"\boxed{}",
        None,
        12345,
    ]
    start = time.perf_counter()
    assert reward(completions=hostile, answer=["1"] * len(hostile)) == [0.0] * len(hostile)
    assert time.perf_counter() - start < 5.0


def test_reward_options_are_validated():
    assert AccuracyReward(timeout_seconds=0, isolate=False).timeout_seconds == 0
    assert AccuracyReward(timeout_seconds=3).timeout_seconds == 3  # ints keep working
    assert AccuracyReward(timeout_seconds=0.25).timeout_seconds == 0.25
    with pytest.raises(ValueError, match="timeout_seconds"):
        AccuracyReward(timeout_seconds="2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="between 0 and 3600"):
        AccuracyReward(timeout_seconds=-1)
    with pytest.raises(ValueError, match="> 0 with isolate"):
        AccuracyReward(timeout_seconds=0)
    for bad in (float("inf"), float("nan"), 1e9, 3600.5):
        with pytest.raises(ValueError, match="timeout_seconds.*between 0 and 3600"):
            AccuracyReward(timeout_seconds=bad)
    with pytest.raises(ValueError, match="timeout_seconds"):
        AccuracyReward(timeout_seconds=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="isolate"):
        AccuracyReward(isolate="yes")  # type: ignore[arg-type]


def test_quick_check_decides_without_sympy():
    assert quick_check(r"\frac{3}{6}", "0.5") == QuickCheck(True, "same number", r"\frac{3}{6}", "0.5")
    assert quick_check("0.33", "1/3").reason == "different number"
    assert quick_check("2x", "4", literal_numbers=True).reason == "not a written-out number"
    assert quick_check("(" * 20 + "x" + ")" * 20, "x").reason == "answer too costly to verify"
    assert quick_check("x", r"\binom{1000000}{500000}").reason == "gold too costly to verify"
    assert quick_check("1" * 20_000, "1").verdict is False
    assert quick_check("x+1", "x+1").reason == "identical"
    assert quick_check("2x+1", "1+2x").verdict is None


def test_check_answers_dedups_and_remembers_verdicts(monkeypatch):
    import rewards.sandbox as sandbox

    clear_verdict_cache()
    sent = []
    real = sandbox.VerifierPool.check

    def spy(self, pairs, timeout_seconds=2.0):
        sent.append(list(pairs))
        return real(self, pairs, timeout_seconds)

    monkeypatch.setattr(sandbox.VerifierPool, "check", spy)
    pairs = [("2x+1", "1+2x"), ("2x+1", "1+2x"), ("x", "1+2x"), ("3", "3.0")]
    expected = [(True, "equivalent"), (True, "equivalent"), (False, "different"), (True, "same number")]
    assert check_answers(pairs) == expected
    assert sent == [[("2x+1", "1+2x"), ("x", "1+2x")]]  # each distinct pair once; numbers never sent
    assert check_answers(pairs) == expected
    assert len(sent) == 1  # remembered


def test_reward_accepts_float_timeouts_and_both_modes():
    completions = ["<answer>1+2x</answer>", r"\boxed{\frac{1}{2}}", "<answer>2x</answer>"]
    golds = ["2x+1", "0.5", "2x+1"]
    for reward in (AccuracyReward(timeout_seconds=0.75), AccuracyReward(timeout_seconds=1, isolate=False)):
        assert reward(completions=completions, answer=golds) == [1.0, 1.0, 0.0]


def test_reward_never_raises_on_unprintable_golds():
    reward = AccuracyReward()
    out = reward(completions=["<answer>1</answer>"] * 3, answer=[10**5000, object(), float("nan")])
    assert out == [0.0, 0.0, 0.0]


def test_config_check_reports_a_timeout_meant_as_no_limit(tmp_path):
    """`ahazero check` runs this validation: 1e9 seconds ("no limit") is a config error, before any model loads."""
    from pathlib import Path

    from ahazero.config.schema import ConfigError, load_config
    from ahazero.config.validate import check_config

    smoke = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
    cfg = load_config(smoke, ["rewards.0.timeout_seconds=1e9", f"output_root={tmp_path}"])
    with pytest.raises(ConfigError, match=r"rewards\.0: .*'timeout_seconds' must be between 0 and 3600.*1000000000"):
        check_config(cfg, cuda=False)
