r"""A corpus of hostile completions and golds for the reward robustness tests.

Hand-written payloads (resource bombs, code injection, broken LaTeX, odd unicode) plus
programmatically generated ones (nesting and size ladders, power towers, seeded random
LaTeX token soup), each wrapped in several completion shapes. Deterministic: the same
corpus on every call.

>>> corpus = build_corpus()
>>> len(corpus) >= 200, len({case.name for case in corpus}) == len(corpus)
(True, True)
>>> len(build_corpus(full=False)) >= 200
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

__all__ = ["HOSTILE_GOLDS", "PWNED_PATH", "SYMPY_BOMBS", "Case", "build_corpus", "hostile_payloads", "shapes"]

MB = 1_000_000
PWNED_PATH = "/tmp/ahazero_adversarial_pwned"
"""The injection payloads try to create this file; it must never appear."""


@dataclass(frozen=True)
class Case:
    """One hostile input: a completion (string or chat messages) and the dataset columns that go with it."""

    name: str
    completion: Any
    gold: Any = "42"
    numbers: Any = (1, 2, 3)
    target: Any = 6
    costly: bool = False  # passes every guard and keeps sympy busy until the time limit

    def columns(self) -> dict[str, list[Any]]:
        """The TRL keyword columns for a batch of this one case."""
        return {"answer": [self.gold], "numbers": [list(self.numbers)], "target": [self.target]}


def _nest(open_: str, close: str, depth: int, core: str = "1") -> str:
    return open_ * depth + core + close * depth


SYMPY_BOMBS: list[tuple[str, str]] = [
    ("expand_4vars", r"(x+y+z+w)^{40}"),  # ~45 s in sympy
    ("expand_6vars", r"(a+b+c+d+e+f)^{20}"),  # minutes
    ("radicals_pow", r"(1+\sqrt{2}+\sqrt{3}+\sqrt{5}+\sqrt{7})^{30}"),
    ("binomial_pow", "(x+1)^{500}"),
    ("nested_sin", r"\sin(\sin(\sin(\sin(\sin(\sin(1))))))"),
    ("faulhaber", r"\sum_{k=1}^{n} k^{60}"),
    ("integral_tower", r"\int_0^1 x^{x^{x}} dx"),
    ("tower_x", "x^{x^{x^{x^{x^{x^{x}}}}}}"),
]
"""Short answers that pass the in-process guards yet keep sympy busy for seconds to minutes."""


def _tower(base: int, height: int) -> str:
    text = str(base)
    for _ in range(height - 1):
        text = f"{base}^{{{text}}}"
    return text


def _hand_written() -> list[tuple[str, str]]:
    return [
        # resource bombs
        ("tower10", "10^{10^{10^{10}}}"),
        ("tower9_stars", "9**9**9**9"),
        ("tower9_latex", "9^{9^{9^9}}"),
        ("tower2", "2^{2^{2^{2^{2^{2}}}}}"),
        ("tower_e", "e^{e^{e^{e^{e}}}}"),
        ("neg_tower", "10^{-10^{10}}"),
        ("factorial_call", "factorial(10**8)"),
        ("factorial_bang", "(10^8)!"),
        ("factorial_big", "1000000!"),
        ("factorial_2_64", "(2^{64})!"),
        ("double_factorial", "(10^{7})!!"),
        ("binom_big", r"\binom{1000000}{500000}"),
        ("binom_expr", r"\binom{10^6}{5 \cdot 10^5}"),
        ("dbinom", r"\dbinom{999999}{123456}"),
        ("gamma_big", r"\Gamma(10^{9})"),
        ("gcd_big", r"\gcd(10^{100000}, 3)"),
        ("lcm_many", r"\operatorname{lcm}(" + ",".join(str(i) for i in range(2, 300)) + ")"),
        ("zeros", r"\operatorname{zeros}(100000, 100000)"),
        ("matrix_pow", r"\begin{pmatrix}1&1\\1&0\end{pmatrix}^{1000000000}"),
        ("det_big", r"\det\begin{pmatrix}" + r"\\".join("&".join("x" for _ in range(12)) for _ in range(12))
         + r"\end{pmatrix}"),
        ("sum_big", r"\sum_{i=1}^{10^{10}} i^{i}"),
        ("prod_big", r"\prod_{i=1}^{10^{9}} i"),
        ("integral", r"\int_0^\infty e^{-x^{10^{6}}}\,dx"),
        ("limit", r"\lim_{x\to 0} \frac{\sin(x^{1000})}{x^{999}}"),
        ("sin_huge", r"\sin(10^{100000})"),
        ("sqrt_tower", r"\sqrt[10^{10}]{10^{10^{10}}}"),
        ("pow_float", "1.0000001^{10^{12}}"),
        ("mod_pow", r"2^{10^{18}} \bmod 7"),
        ("inf_pow", r"\infty^{\infty}"),
        ("zero_pow", "0^0"),
        ("div_zero", "1/0"),
        ("frac_zero", r"\frac{1}{0}"),
        ("zero_zero", "0/0"),
        ("sci_huge", "1e999999999"),
        ("sci_tiny", "1e-999999999"),
        ("sci_309", "1e309"),
        # code injection (must never be evaluated)
        ("import_os", f"__import__('os').system('touch {PWNED_PATH}')"),
        ("lambda", "lambda: __import__('os').system('id')"),
        ("lambda_call", "(lambda x: x)(1)"),
        ("exec", f"exec(\"import os; os.system('touch {PWNED_PATH}')\")"),
        ("exec_latex", rf"\operatorname{{exec}}(\text{{open('{PWNED_PATH}', 'w')}})"),
        ("eval", "eval('1+1')"),
        ("open", f"open('{PWNED_PATH}', 'w').write('x')"),
        ("dunder_chain", "().__class__.__bases__[0].__subclasses__()"),
        ("sympify", "sympify('__import__(\"os\")')"),
        ("getattr", "getattr(__builtins__, 'exec')('1')"),
        ("fstring", "f'{__import__(\"os\").getcwd()}'"),
        ("latex_input", r"\input{/etc/passwd}"),
        ("latex_write18", r"\immediate\write18{rm -rf /}"),
        ("latex_def_loop", r"\def\a{\a}\a"),
        ("latex_newcommand", r"\newcommand{\x}{\x\x}\x"),
        # broken LaTeX
        ("left_unclosed", r"\left( 1 + 2"),
        ("right_alone", r"1 + 2 \right)"),
        ("frac_open", r"\frac{1}{"),
        ("frac_bare", r"\frac"),
        ("sqrt_open", r"\sqrt{"),
        ("closers", "}}}}}}"),
        ("openers", "{{{{{{"),
        ("begin_unclosed", r"\begin{pmatrix} 1 & 2"),
        ("end_alone", r"\end{array}"),
        ("dollar", "$"),
        ("double_dollar", "$$"),
        ("paren_math", "\\("),
        ("trailing_backslash", "1\\"),
        ("escaped_braces", r"\{\{\{1\}\}"),
        ("comment", "1 % 2"),
        ("text_nul", "\\text{\x00}"),
        ("operators", "+-*/^_!"),
        ("many_plus", "1" + "+" * 400 + "1"),
        ("many_minus", "-" * 999 + "1"),
        ("many_bang", "3" + "!" * 50),
        ("many_primes", "f" + "'" * 500 + "(x)"),
        ("subscripts", "x" + "_{1" * 300 + "}" * 300),
        ("equals_chain", "x = y = z = 1 = 2"),
        ("big_set", r"\{" + ",".join(str(i) for i in range(3000)) + r"\}"),
        ("big_matrix", r"\begin{pmatrix}" + r"\\".join("&".join("1" for _ in range(100)) for _ in range(100))
         + r"\end{pmatrix}"),
        ("interval", r"(0, \infty) \cup [1, 2) \cap \emptyset"),
        # empty and degenerate
        ("empty_boxed", r"\boxed{}"),
        ("space_boxed", r"\boxed{ }"),
        ("bare_boxed", r"\boxed"),
        ("empty", ""),
        ("whitespace", " \t\r\n "),
        # NUL bytes, surrogates, control and odd unicode
        ("nul", "\x00"),
        ("nul_inside", "4\x002"),
        ("nuls", "\x00" * 10_000),
        ("surrogate", "\ud800"),
        ("surrogates", "\udfff1\ud800"),
        ("surrogate_pair_half", "4\udbff2"),
        ("ansi", "\x1b[31m42\x1b[0m"),
        ("bom", "\ufeff42"),
        ("rtl_override", "\u202e24"),
        ("zero_width", "4\u200b2"),
        ("combining", "4\u0301\u0302\u03032"),
        ("fullwidth", "\uff14\uff12"),
        ("arabic_digits", "\u0664\u0662"),
        ("superscript", "4\u00b2"),
        ("vulgar_half", "\u00bd"),
        ("math_italic", "\U0001d465 + 1"),
        ("emoji", "\U0001f600" * 100),
        ("infinity_sign", "\u221e"),
        ("sqrt_sign", "\u221a2"),
        ("pi_sign", "\u03c0"),
        ("minus_sign", "\u221242"),
        ("nbsp", "4\u00a02"),
        ("private_use", "\ue000\U000f0000"),
        ("noncharacter", "\uffff\ufffe"),
        ("cjk", "\u56db\u5341\u4e8c"),
        ("hex", "0x2A"),
        ("binary", "0b101010"),
        ("underscores", "4_2"),
        ("nan", "nan"),
        ("inf", "-inf"),
        ("percent", "4200\\%"),
        # tag confusion
        ("nested_answer_tags", "<answer><answer>42</answer></answer>"),
        ("think_inside", "<think>42</think>"),
        ("close_only", "</answer></think>"),
        ("tag_soup", "<think><answer></think></answer>" * 100),
    ]


def _generated() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for depth in (100, 1000, 10_000):
        out.append((f"parens_{depth}", _nest("(", ")", depth)))
        out.append((f"braces_{depth}", _nest("{", "}", depth)))
        out.append((f"frac_chain_{depth}", _nest(r"\frac{", "}{2}", depth)))
        out.append((f"sqrt_nest_{depth}", _nest(r"\sqrt{", "}", depth, "2")))
        out.append((f"left_nest_{depth}", _nest(r"\left(", r"\right)", depth)))
        out.append((f"boxed_nest_{depth}", _nest(r"\boxed{", "}", depth, "42")))
        out.append((f"unclosed_frac_{depth}", r"\frac{" * depth))
        out.append((f"unclosed_left_{depth}", r"\left(" * depth + "1"))
    for depth in (10, 30, 60):  # short enough to pass the length guard: reach the verifier
        out.append((f"sqrt_short_{depth}", _nest(r"\sqrt{", "}", depth, "2")))
        out.append((f"frac_short_{depth}", _nest(r"\frac{1}{", "}", depth, "2")))
        out.append((f"parens_short_{depth}", _nest("(", ")", depth, "x+1")))
        out.append((f"pow_short_{depth}", "{2^" * depth + "2" + "}" * depth))
    for digits in (1000, 4301, 10_000, 100_000):
        out.append((f"int_{digits}", "9" * digits))
        out.append((f"decimal_{digits}", "0." + "0" * digits + "1"))
        out.append((f"ratio_{digits}", "1/" + "7" * digits))
        out.append((f"latex_frac_{digits}", r"\frac{1}{" + "3" * digits + "}"))
    for base in (2, 9, 10):
        for height in (3, 4, 5):
            out.append((f"tower_{base}_{height}", _tower(base, height)))
    for k in (3, 5, 7, 9, 12):
        out.append((f"factorial_1e{k}", f"10^{{{k}}}!"))
        out.append((f"binom_1e{k}", rf"\binom{{{10**k}}}{{{10**k // 2}}}"))
    out.append(("ones_1mb", "1" * MB))
    out.append(("letters_1mb", "a" * MB))
    out.append(("latex_1mb", r"\frac{1}{2}" * (MB // 11)))
    out.append(("think_spam", "<think>" * 10_000 + "42"))
    out.append(("answer_spam", "<answer>" * 10_000 + "42" + "</answer>" * 10_000))
    rng = random.Random(20240601)
    tokens = [r"\frac{", "}", "{", "^", "_", r"\sqrt{", r"\left(", r"\right)", "(", ")", "!", r"\binom{",
              "x", "y", "9", "10", "+", "-", r"\cdot", "=", ",", r"\infty", r"\pi", "e", r"\int", r"\sum",
              r"\begin{pmatrix}", "&", r"\\", r"\end{pmatrix}", "$", r"\text{", "\x00", "\ud800", r"\boxed{"]
    for i in range(40):
        out.append((f"soup_{i}", "".join(rng.choice(tokens) for _ in range(rng.randint(5, 80)))))
    return out


def hostile_payloads() -> list[tuple[str, str]]:
    """``(name, answer text)`` pairs: the hand-written ones, then the generated ones."""
    return _hand_written() + _generated()


def shapes(payload: str) -> list[tuple[str, Any]]:
    """The completion shapes a payload is wrapped in: answer tags, boxed, chat messages, no think block."""
    return [
        ("answer", f"<think>Let me compute.</think>\n<answer>{payload}</answer>"),
        ("boxed", f"<think>So</think> The answer is $\\boxed{{{payload}}}$."),
        ("chat", [{"role": "assistant", "content": f"<think>hm</think><answer>{payload}</answer>"}]),
        ("bare", f"<answer>{payload}</answer>"),
    ]


HOSTILE_GOLDS: list[tuple[str, Any]] = [
    ("binom", r"\binom{1000000}{500000}"),
    ("tower", "9^{9^{9^9}}"),
    ("pow_short", "{2^" * 30 + "2" + "}" * 30),
    ("sqrt_short", r"\sqrt{" * 30 + "2" + "}" * 30),
    ("one_mb", "7" * MB),
    ("nul", "\x00"),
    ("surrogate", "\ud800"),
    ("empty", ""),
    ("injection", "__import__('os').system('id')"),
    ("expand_bomb", r"(x+y+z+w)^{40}"),
    ("unbalanced", r"\frac{1}{"),
    ("none", None),
    ("int", 42),
    ("float_nan", float("nan")),
    ("float_inf", float("inf")),
    ("huge_int", 10**5000),  # str() of it raises ValueError (int max str digits)
    ("list", [1, 2]),
    ("bytes", b"42"),
    ("object", object()),
]


def build_corpus(*, full: bool = True) -> list[Case]:
    """Every payload in every shape (gold "42"), then normal completions against every hostile gold.

    Countdown columns get hostile values too in the hostile-gold cases. With ``full=False``
    the :data:`SYMPY_BOMBS` (each costs a whole time limit) come in one shape only.
    """
    cases: list[Case] = []
    for name, payload in hostile_payloads():
        for shape, completion in shapes(payload):
            cases.append(Case(name=f"{name}/{shape}", completion=completion))
    for name, payload in SYMPY_BOMBS:
        for shape, completion in shapes(payload)[: None if full else 1]:
            cases.append(Case(name=f"{name}/{shape}", completion=completion, costly=True))
    normal = ["<think>6 * 7 = 42</think>\n<answer>42</answer>", "<think>hm</think><answer>2x+1</answer>",
              r"<think>so</think> $\boxed{\frac{1}{2}}$"]
    for name, gold in HOSTILE_GOLDS:
        for i, completion in enumerate(normal):
            costly = any(gold == bomb for _n, bomb in SYMPY_BOMBS)
            cases.append(Case(name=f"gold:{name}/{i}", completion=completion, gold=gold, numbers=[gold, 1],
                              target=gold, costly=costly))
    cases.append(Case(name="countdown:huge_target", completion="<answer>1+2</answer>", target="1e999999999"))
    cases.append(Case(name="countdown:big_numbers", completion="<answer>1+2</answer>", numbers=["9" * 100_000]))
    cases.append(Case(name="countdown:deep", completion="<answer>" + _nest("(", ")", 99) + "</answer>"))
    cases.append(Case(name="countdown:neg_chain", completion="<answer>" + "-" * 199 + "1</answer>"))
    return cases
