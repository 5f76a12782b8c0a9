"""The configuration reference page (``docs/configuration-reference.md``), written from the schema.

Every section and key of :class:`~ahazero.config.schema.ExperimentConfig` (with the ``generation``,
``update``, ``sft`` and ``stages`` sections of ``generation_schema`` and ``stage_schema``) becomes a
table row: the dotted key as an override names it, its type, default, valid values and help text.
The ``grpo`` keys that ahazero checks or owns, the registered rewards and tasks with their options,
and the presets follow. ``scripts/gen_config_reference.py`` writes the page; a test fails when the
checked-in page differs from :func:`reference_markdown`.

Example:
    >>> page = reference_markdown()
    >>> page.splitlines()[0]
    '# Configuration reference'
    >>> "| `generation.backend` | string | `auto` |" in page
    True
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

import rewards
from ahazero.config.grpo_ranges import GRPO_RANGES
from ahazero.config.presets import PRESETS
from ahazero.config.schema import ExperimentConfig, RewardSpec, TaskSpec
from ahazero.config.stage_schema import SFTSection
from ahazero.config.validate import OWNED_GRPO_KEYS
from ahazero.config.yaml_load import flow_yaml
from ahazero.tasks import REQUIRED, available_tasks, task_options

__all__ = ["REFERENCE_PAGE", "REGENERATE", "reference_markdown"]

#: Where the page lives in the repository, and the command that rewrites it.
REFERENCE_PAGE = "docs/configuration-reference.md"
REGENERATE = "make docs (or: python scripts/gen_config_reference.py)"

#: What the free-form keys of a section that allows them are.
_OTHER_KEYS = {
    TaskSpec: "the task's own options: see [Tasks](#tasks)",
    RewardSpec: "the reward's own options: see [Rewards](#rewards-registered)",
    SFTSection: "any field of `trl.SFTConfig` (checked against its fields before any model loads)",
}

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null", Any: "any"}


def _section_model(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """The section class a field holds (directly, optional, or as a list), and whether it is a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0], True
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            found = _section_model(arg)
            if found:
                return found
    return None


def _type_text(annotation: Any) -> str:
    """A field's type in words.

    Example:
        >>> _type_text(list[str] | Literal["all-linear"]), _type_text(float | None)
        ('list of string or `all-linear`', 'number or null')
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " or ".join(f"`{a}`" for a in args) if len(args) == 1 else "string"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_type_text(a) for a in args))
    if origin is list:
        return f"list of {_type_text(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return _SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _choices(annotation: Any) -> list[Any]:
    """The values of the ``Literal`` a field's annotation is, optional or not (not one beside other types)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        others = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = others[0] if len(others) == 1 else None
    return list(typing.get_args(annotation)) if typing.get_origin(annotation) is Literal else []


def _valid_text(field: FieldInfo) -> str:
    """The valid values: the choices of a ``Literal``, or the field's numeric bounds and lengths."""
    choices = _choices(field.annotation)
    if choices:
        return "one of " + ", ".join(f"`{c}`" for c in choices)
    rules = []
    for item in field.metadata:
        for kind, attr, sign in ((Gt, "gt", ">"), (Ge, "ge", ">="), (Lt, "lt", "<"), (Le, "le", "<=")):
            if isinstance(item, kind):
                rules.append(f"{sign} {getattr(item, attr):g}")
        if isinstance(item, MinLen):
            rules.append(f"at least {item.min_length}" + (" item" if typing.get_origin(field.annotation) else " character"))
        if getattr(item, "allow_inf_nan", None) is False:
            rules.append("finite")
    return ", ".join(rules)


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        return "its defaults"
    return f"`{flow_yaml(value)}`"


def _cell(text: str) -> str:
    """Text for a table cell: docstring markup as markdown, pipes escaped, ``<...>`` outside code shown as text.

    Example:
        >>> _cell("see :mod:`ahazero.observe.collapse`; ``{name}`` in <output_root>")
        'see `ahazero.observe.collapse`; `{name}` in &lt;output_root&gt;'
    """
    text = re.sub(r":\w+:`([^`]+)`", r"`\1`", text).replace("``", "`")
    parts = text.replace("|", "\\|").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading.

    Example:
        >>> _anchor("Rewards (registered)"), _anchor("model.lora")
        ('rewards-registered', 'modellora')
    """
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _sections(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type[BaseModel]]]:
    """``(dotted path, class)`` of ``model`` and every section under it, depth first."""
    found = [(prefix, model)]
    for name, field in model.model_fields.items():
        section = _section_model(field.annotation)
        if section:
            cls, is_list = section
            found += _sections(cls, f"{prefix}{name}.N." if is_list else f"{prefix}{name}.")
    return found


def _heading(path: str) -> str:
    return path.removesuffix(".").removesuffix(".N") or "Top level"


def _section_table(prefix: str, model: type[BaseModel]) -> list[str]:
    rows = ["| key | type | default | valid | what it does |", "|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        section = _section_model(field.annotation)
        if section:
            heading = _heading(f"{prefix}{name}.")
            kind = "list of sections" if section[1] else "section"
            type_text = f"{kind}: [{heading}](#{_anchor(heading)})"
        else:
            type_text = _type_text(field.annotation)
        rows.append(f"| `{prefix}{name}` | {type_text} | {_default_text(field)} | {_cell(_valid_text(field))} "
                    f"| {_cell(field.description or '')} |")
    if model in _OTHER_KEYS:
        rows.append(f"| `{prefix}*` | any | | | {_OTHER_KEYS[model]} |")
    return rows


def _grpo_lines() -> list[str]:
    lines = ["## grpo", "",
             "Every key is passed to `trl.GRPOConfig` (an unknown key is an error, with close matches). "
             "These keys are checked before any model loads:", "",
             "| key | valid |", "|---|---|"]
    lines += [f"| `grpo.{key}` | {_cell(text)} |" for key, (_, text) in GRPO_RANGES.items()]
    lines += ["", "These keys are set by ahazero and may not be given:", "", "| key | instead |", "|---|---|"]
    lines += [f"| `grpo.{key}` | {_cell(text)} |" for key, text in OWNED_GRPO_KEYS.items()]
    return lines


def _options_text(options: dict[str, Any]) -> str:
    return ", ".join(f"`{k}`: " + ("required" if v is REQUIRED else f"`{flow_yaml(v)}`") for k, v in options.items())


def _registry_lines() -> list[str]:
    lines = ["## Rewards (registered)", "",
             "Valid `rewards.N.name` values, and the options each takes beside `name` and `weight` (with their "
             "defaults). A `module:function` path names your own reward. What each reward scores: "
             "[rewards.md](rewards.md).", "", "| reward | options |", "|---|---|"]
    lines += [f"| `{name}` | {_options_text(rewards.reward_kwargs(name)) or '(none)'} |"
              for name in rewards.available_rewards()]
    lines += ["", "## Tasks", "",
              "Valid `task.name` values, and the options each takes (with their defaults; `seed` defaults to the "
              "config's `seed`).", "", "| task | options |", "|---|---|"]
    lines += [f"| `{name}` | {_options_text(task_options(name))} |" for name in available_tasks()]
    lines += ["", "## Presets", "",
              "`--preset NAME` (repeatable) applies these overrides after the config file and before the "
              "command line's.", "", "| preset | what | sets |", "|---|---|---|"]
    lines += [f"| `{name}` | {_cell(description)} | "
              + ", ".join(f"`{key}={flow_yaml(value)}`" for key, value in overrides.items()) + " |"
              for name, (description, overrides) in PRESETS.items()]
    return lines


def reference_markdown() -> str:
    """The whole reference page as markdown (what ``docs/configuration-reference.md`` must hold).

    Example:
        >>> "| `rewards.N.weight` | number | `1.0` | finite |" in reference_markdown()
        True
    """
    sections = _sections(ExperimentConfig)
    lines = [
        "# Configuration reference", "",
        "<!-- Generated from src/ahazero/config/ by scripts/gen_config_reference.py (`make docs`); edit the "
        "schema's help texts, not this page. -->", "",
        "Every key a config file may hold: its type, default, valid values and what it does. A dotted key is "
        "also a command-line override (`model.dtype=float32`); `N` is a list index (`rewards.1.weight=0.1`). "
        "How to use them: [configuration.md](configuration.md).", "",
        "Sections: " + ", ".join(f"[{_heading(p)}](#{_anchor(_heading(p))})" for p, _ in sections)
        + ", [grpo](#grpo), [Rewards](#rewards-registered), [Tasks](#tasks), [Presets](#presets).", "",
    ]
    for prefix, model in sections:
        doc = (model.__doc__ or "").strip().splitlines()[0]
        lines += [f"## {_heading(prefix)}", "", _cell(doc), "", *_section_table(prefix, model), ""]
    lines += [*_grpo_lines(), "", *_registry_lines()]
    return "\n".join(lines) + "\n"
