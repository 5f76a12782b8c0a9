"""``GRPOTrainer`` with tracing: each generation step's completions are measured and written.

The subclass hooks the one place where a step's completions, rewards and advantages are
all known (``_generate_and_score_completions``) and otherwise leaves TRL's algorithm alone.

Example:
    >>> trainer = AhaGRPOTrainer(model=model, reward_funcs=funcs, args=args,      # doctest: +SKIP
    ...                          train_dataset=ds, processing_class=tok, tracer=TraceWriter("runs/x/traces"))
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer
from trl.models import unwrap_model_for_generation
from trl.trainer.utils import pad

from ahazero.observe.tracing import TraceWriter
from ahazero.rollout.decode_cost import estimate_decode_stats
from ahazero.rollout.graph_sampler import GraphSampler, error_summary
from ahazero.training.micro_batches import regroup_by_length, regroup_by_prompt
from ahazero.training.packed_attention import packed_log_probs, switch_attention
from ahazero.training.packing import pack_rows
from ahazero.training.update_meter import UpdateMeter, padded_counts

__all__ = ["AhaGRPOTrainer", "avoid_unstable_length", "zero_variance_groups"]

logger = logging.getLogger("ahazero.training.trainer")

#: Per-prompt-token fields a vision-language batch carries; such batches are left as they are.
_PROMPT_ALIGNED_KEYS = ("token_type_ids", "mm_token_type_ids")


def avoid_unstable_length(output: dict[str, Any], pad_token_id: int) -> dict[str, Any]:
    """Left-pad the prompts by one token when prompt + completion width is an odd multiple of 64.

    On an H200 (torch 2.11, bf16, SDPA with a padding mask), every training step whose loss
    batch was 192 or 320 tokens wide produced a non-finite gradient (1,195 of 1,195 steps
    over nine runs), and no step at 256 or 384 tokens did (0 of 1,785); other widths almost
    never did. One extra padding column (masked out, no effect on the loss) moves the batch
    off those widths. The batch is changed in place and returned.

    Example:
        >>> out = {"prompt_ids": torch.ones(2, 100, dtype=torch.long), "prompt_mask": torch.ones(2, 100),
        ...        "completion_ids": torch.ones(2, 92, dtype=torch.long)}
        >>> avoid_unstable_length(out, pad_token_id=0)["prompt_ids"].shape, out["prompt_mask"][0, :2].tolist()
        (torch.Size([2, 101]), [0.0, 1.0])
    """
    width = output["prompt_ids"].shape[1] + output["completion_ids"].shape[1]
    if width % 128 != 64 or any(key in output for key in _PROMPT_ALIGNED_KEYS):
        return output
    output["prompt_ids"] = torch.nn.functional.pad(output["prompt_ids"], (1, 0), value=pad_token_id)
    output["prompt_mask"] = torch.nn.functional.pad(output["prompt_mask"], (1, 0), value=0)
    return output


def zero_variance_groups(values: torch.Tensor, num_generations: int, tol: float = 1e-6) -> torch.Tensor:
    """One flag per group of ``num_generations`` consecutive rewards: True where the group's rewards are all equal.

    NaN (a reward that did not apply) is ignored; a group with no finite reward counts as
    zero-variance (it carries no signal either).

    Example:
        >>> zero_variance_groups(torch.tensor([0., 0., 0., 1., 1., 1., float("nan"), 1.]), 2).tolist()
        [True, False, True, True]
    """
    groups = values.view(-1, num_generations)  # (G, n)
    finite = ~torch.isnan(groups)
    high = torch.where(finite, groups, float("-inf")).max(dim=1).values
    low = torch.where(finite, groups, float("inf")).min(dim=1).values
    return ~finite.any(dim=1) | ((high - low) <= tol)


class AhaGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer plus per-step traces, behaviour metrics and rollout timing.

    Each generation batch adds ``timing/generation_seconds``, ``timing/reward_seconds``,
    ``timing/generated_tokens`` and ``timing/tokens_per_second`` to the logged metrics (and
    ``memory/peak_allocated_gib`` on a GPU), and the decode counts the bench turns into a
    decode step's time, bandwidth and FLOP rate (``timing/decode_*``, ``timing/prefill_*``:
    measured by the ``graph`` sampler, estimated from the batch's shape for TRL's generate);
    :attr:`rollout_timings` keeps one dict per batch, with the optimizer step it belongs to
    under ``step``. With :attr:`sort_by_length`, each optimizer step's micro-batches are
    regrouped by completion length (:func:`~ahazero.training.micro_batches.regroup_by_length`).
    With :attr:`packing`, each log-prob pass packs its micro-batch's tokens into one row
    (:mod:`ahazero.training.packing`; with :attr:`share_prompts` the completions of one prompt
    share one copy of it, and each optimizer step's rows are grouped by prompt). Each optimizer
    step logs its update's time and tokens (``timing/update_*``, :mod:`ahazero.training.update_meter`)
    and keeps them in :attr:`update_timings`.

    ``zero_variance`` (``groups.zero_variance`` in a config) is ``"keep"`` (TRL's algorithm) or
    ``"drop"``: a group whose ``group_reward`` (a reward's name, or ``"total"``) is the same for
    every completion gets advantage 0 and is masked out of the loss, as TRL masks truncated
    completions (``mask_truncated_completions``), so the token count that ``loss_type: dapo``
    divides by counts only the groups kept. Each generation batch logs the share of such
    groups as ``behaviour/zero_variance_groups`` (in both modes) and, with ``drop``,
    ``behaviour/groups_dropped``.
    """

    def __init__(self, *args: Any, tracer: TraceWriter | None = None, zero_variance: str = "keep",
                 group_reward: str = "accuracy", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if zero_variance not in ("keep", "drop"):
            raise ValueError(f"zero_variance must be 'keep' or 'drop', got {zero_variance!r}")
        names = list(self.reward_func_names)
        if zero_variance == "drop" and group_reward not in (*names, "total"):
            raise ValueError(f"group_reward {group_reward!r} is not one of the rewards {names} or 'total'")
        self.zero_variance = zero_variance
        #: Column of the reward whose spread decides (None: the weighted total; -1: not configured).
        self._group_column = None if group_reward == "total" else (names.index(group_reward)
                                                                   if group_reward in names else -1)
        self._last_rewards: torch.Tensor | None = None
        self.tracer = tracer
        self.rollout_timings: list[dict[str, float]] = []
        self._pending: defaultdict[str, float] = defaultdict(float)
        self.graph_sampler: GraphSampler | None = None  # set for the 'graph' backend
        #: Left-pad prompts to a multiple of this for generation only ('compiled', 'graph').
        self.generation_bucket: int | None = None
        self._graph_checked = False  # a rollout has succeeded: later errors are real ones
        self._graph_fallback = False
        #: Regroup each optimizer step's micro-batches by completion length, padding cut (``update.sort_by_length``).
        self.sort_by_length = False
        #: Pack each log-prob pass's tokens into one row (``update.packing``), sharing prompts (``update.share_prompts``).
        self.packing = False
        self.share_prompts = False
        self._restore_attention: Any = None  # set while a packed forward's backward is still to run
        self.update_meter = UpdateMeter(cuda=self.accelerator.device.type == "cuda", device=self.accelerator.device)
        self.update_timings: list[dict[str, float]] = []
        #: Called with each generation batch's micro-batches (as TRL split them) before the update (the bench's A/B).
        self.update_probe: Any = None

    def use_graph_sampler(self, sampler: GraphSampler | None = None, *, fallback: bool = False) -> None:
        """Generate rollouts with ahazero's fixed-shape loop (the ``graph`` backend).

        With ``fallback`` (the ``auto`` backend), a model the loop cannot run — its first
        rollout fails — is generated with TRL's ``generate`` instead, with a warning.
        """
        self.graph_sampler = sampler or GraphSampler()
        self._graph_fallback = fallback

    def _sync(self) -> None:
        if self.accelerator.device.type == "cuda":
            torch.cuda.synchronize(self.accelerator.device)

    def _generate_single_turn(self, *args: Any, **kwargs: Any) -> Any:
        self._attention_back()  # generation attends as the model was loaded
        self._sync()
        start = time.perf_counter()
        sampler = None
        if self.graph_sampler is not None and not self.use_vllm and not self.use_transformers_continuous_batching:
            sampler, self.graph_sampler.last_stats = self.graph_sampler, {}
            completion_ids, logprobs = self._generate_with_graph_sampler(*args, **kwargs)
        else:
            completion_ids, logprobs = self._generate_with_trl(*args, **kwargs)
        self._graph_checked = True
        self._sync()
        seconds = time.perf_counter() - start
        self._pending["generation_seconds"] += seconds
        self._pending["generated_tokens"] += sum(len(ids) for ids in completion_ids)
        self._pending["completions"] += len(completion_ids)
        prompt_ids = args[0] if args else kwargs.get("prompt_ids", [])
        stats = sampler.last_stats if sampler is not None and sampler.last_stats else \
            self._decode_estimate(prompt_ids, completion_ids, seconds)
        for key, value in stats.items():
            self._pending[key] += value
        return completion_ids, logprobs

    def _decode_estimate(self, prompt_ids: list[list[int]], completion_ids: list[list[int]],
                         seconds: float) -> dict[str, float]:
        """Decode counts of TRL's generate, from the batch's shape (none for vLLM or paged generation)."""
        if self.use_vllm or self.use_transformers_continuous_batching or not prompt_ids or not completion_ids:
            return {}
        width = max(len(ids) for ids in prompt_ids)
        bucket = self.generation_bucket or self.pad_to_multiple_of
        if bucket:
            width = -(-width // bucket) * bucket
        stats = estimate_decode_stats(rows=len(completion_ids), prompt_width=width,
                                      longest=max(len(ids) for ids in completion_ids),
                                      max_new_tokens=self.max_completion_length,
                                      static_cache=getattr(self.args, "cache_implementation", None) == "static")
        return {**stats, "decode_seconds": seconds}  # the prefill included: an upper bound of the decode time

    def _generate_with_trl(self, *args: Any, **kwargs: Any) -> Any:
        """TRL's generation, with prompts padded to :attr:`generation_bucket` for it alone.

        TRL reads ``pad_to_multiple_of`` both here and when it pads the batch for the loss;
        the bucket is set only around generation, so the loss sees minimal padding.
        """
        if self.generation_bucket is None:
            return super()._generate_single_turn(*args, **kwargs)
        saved, self.pad_to_multiple_of = self.pad_to_multiple_of, self.generation_bucket
        try:
            return super()._generate_single_turn(*args, **kwargs)
        finally:
            self.pad_to_multiple_of = saved

    def _generate_with_graph_sampler(self, prompt_ids: list[list[int]], images: Any = None,
                                     multimodal_fields: Any = None, *args: Any, **kwargs: Any) -> tuple[list, None]:
        """TRL's regular generation path with :class:`GraphSampler` in place of ``model.generate``."""
        if images is not None or multimodal_fields:
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, *args, **kwargs)
        pad_id = self._tokenizer.pad_token_id
        prompts = [torch.tensor(ids) for ids in prompt_ids]
        bucket = self.generation_bucket or self.pad_to_multiple_of
        input_ids = pad(prompts, padding_value=pad_id, padding_side="left", pad_to_multiple_of=bucket)
        mask = pad([torch.ones_like(t) for t in prompts], padding_value=0, padding_side="left",
                   pad_to_multiple_of=bucket)
        device = self.accelerator.device
        try:
            completion_ids = self._graph_sample(input_ids.to(device), mask.to(device))
        except Exception as err:
            if self._graph_checked or not self._graph_fallback:  # asked for by name, or it worked before
                raise
            logger.warning("generation.backend 'auto': the 'graph' sampler cannot run this model (%s); "
                           "using TRL's generate instead", error_summary(err))
            self.graph_sampler = None
            return self._generate_with_trl(prompt_ids, images, multimodal_fields, *args, **kwargs)
        return completion_ids, None

    def _graph_sample(self, input_ids: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        pad_id = self._tokenizer.pad_token_id
        with (
            unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as unwrapped_model,
            torch.no_grad(),
            self._dist.summon_full_params(self.model_wrapped, recurse=False),
        ):
            return self.graph_sampler.generate(
                unwrapped_model, input_ids, mask,
                max_new_tokens=self.max_completion_length, eos_token_ids=list(self.eos_token_ids),
                pad_token_id=pad_id, temperature=self.temperature, top_k=self.top_k or 0,
                top_p=self.top_p if self.top_p is not None else 1.0,
            )

    def _prepare_inputs(self, generation_batch: Any) -> Any:
        """TRL's buffered micro-batches, regrouped when refilled (:meth:`regroup`); :attr:`update_probe` sees them first."""
        buffered = self._buffered_inputs
        inputs = super()._prepare_inputs(generation_batch)
        if self.model.training and self._buffered_inputs is not buffered:
            if self.update_probe is not None:
                self.update_probe(list(self._buffered_inputs))
            regrouped = self.regroup(self._buffered_inputs)
            if regrouped is not self._buffered_inputs:
                self._buffered_inputs = regrouped
                inputs = self._buffered_inputs[self._step % self.args.steps_per_generation]
        if self.model.training:
            self.update_meter.begin()
        return inputs

    def regroup(self, micro_batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """TRL's micro-batches of a generation batch as this trainer's update settings compute them.

        By prompt with :attr:`share_prompts` (and :attr:`packing`), else by length with
        :attr:`sort_by_length`, else unchanged (the same list).
        """
        if self.packing and self.share_prompts:
            return regroup_by_prompt(micro_batches, self.args.gradient_accumulation_steps)
        if self.sort_by_length:
            return regroup_by_length(micro_batches, self.args.gradient_accumulation_steps)
        return micro_batches

    def compute_loss(self, model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.packing and self.model.training and "prompt_mask" in inputs:
            counts = padded_counts(inputs)
            self.update_meter.count(computed=counts["computed"], real=counts["real"], loss=counts["loss"])
        loss = super().compute_loss(model, inputs, *args, **kwargs)
        self.update_meter.forward_done()
        return loss

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().training_step(*args, **kwargs)
        finally:
            self._attention_back()
            self.update_meter.end()
            if self._step % self.current_gradient_accumulation_steps == 0:
                self._record_update()

    def _record_update(self) -> None:
        """One optimizer step's update time and tokens as metrics and in :attr:`update_timings`."""
        stats = self.update_meter.finish_step()
        if not stats.get("update_micro_batches"):
            return
        self.update_timings.append({"step": self.state.global_step + 1, **stats})
        for key, value in stats.items():
            self._metrics["train"][f"timing/{key}"].append(float(value))

    def _attention_back(self) -> None:
        if self._restore_attention is not None:
            self._restore_attention()
            self._restore_attention = None

    def _get_per_token_logps_and_entropies(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                                           logits_to_keep: int, batch_size: int | None = None,
                                           compute_entropy: bool = False, compute_aux_loss: bool = False,
                                           **extra: Any) -> Any:
        """TRL's log-prob pass; with :attr:`packing`, each chunk's tokens packed into one row."""
        start = time.perf_counter() if self.model.training and not torch.is_grad_enabled() else None
        if not self.packing or compute_aux_loss or any(value is not None for value in extra.values()):
            out = super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **extra)
        else:
            out = self._packed_logps(model, input_ids, attention_mask, logits_to_keep,
                                     batch_size or input_ids.size(0), compute_entropy)
        if start is not None:  # the old/reference log-prob passes of a generation batch (no gradient)
            self._sync()
            self._pending["logprob_seconds"] += time.perf_counter() - start
        return out

    def _packed_logps(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int,
                      batch_size: int, compute_entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None, None]:
        logps, entropies = [], []
        for start in range(0, input_ids.size(0), batch_size):
            ids, mask = input_ids[start:start + batch_size], attention_mask[start:start + batch_size]
            layout = pack_rows(ids, mask, logits_to_keep, share_prompts=self.share_prompts)
            if layout is None:  # no completion token to score: TRL's path keeps the output connected
                part, entropy, _ = super()._get_per_token_logps_and_entropies(
                    model, ids, mask, logits_to_keep, compute_entropy=compute_entropy)
            else:
                if torch.is_grad_enabled():  # switched back after the backward (checkpointing recomputes in it)
                    if self._restore_attention is None:
                        self._restore_attention = switch_attention(model)
                    part, entropy = self._packed_forward(model, layout, compute_entropy)
                else:
                    restore = switch_attention(model)
                    try:
                        part, entropy = self._packed_forward(model, layout, compute_entropy)
                    finally:
                        restore()
                if torch.is_grad_enabled() and model.training:
                    tokens = float(layout.counts["packed_tokens"])
                    self.update_meter.count(computed=tokens, real=tokens, loss=float(layout.counts["loss_tokens"]))
            logps.append(part)
            entropies.append(entropy)
        entropy_out = torch.cat(entropies) if compute_entropy else None
        return torch.cat(logps), entropy_out, None

    def _packed_forward(self, model: Any, layout: Any, compute_entropy: bool) -> tuple[Any, Any]:
        with self.accelerator.autocast():
            return packed_log_probs(model, layout, compute_entropy=compute_entropy)

    def _calculate_rewards(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        rewards = super()._calculate_rewards(*args, **kwargs)  # (N_all, F): gathered from every process
        self._pending["reward_seconds"] += time.perf_counter() - start
        self._last_rewards = rewards
        return rewards

    def _record_timing(self) -> None:
        """Turn this batch's timers into metrics (this process's share of the batch)."""
        timing, self._pending = dict(self._pending), defaultdict(float)
        if not timing:
            return
        if timing.get("generation_seconds"):
            timing["tokens_per_second"] = timing.get("generated_tokens", 0.0) / timing["generation_seconds"]
        if self.accelerator.device.type == "cuda":
            timing["peak_allocated_gib"] = torch.cuda.max_memory_allocated(self.accelerator.device) / 2**30
        self.rollout_timings.append({"step": self.state.global_step + 1, **timing})
        mode = "train" if self.model.training else "eval"
        for key, value in timing.items():
            prefix = "memory" if key.startswith("peak") else "timing"
            self._metrics[mode][f"{prefix}/{key}"].append(float(value))

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = avoid_unstable_length(super()._generate_and_score_completions(inputs), self._tokenizer.pad_token_id)
        self._record_timing()
        dropped = self._zero_variance_rows(output) if self.model.training else None
        if dropped is not None:
            output["advantages"] = output["advantages"] * (~dropped).to(output["advantages"].dtype)
        if self.tracer is not None and self.model.training:
            self._trace(inputs, output)  # every process takes part: the pieces are gathered
        if dropped is not None:
            self._drop_from_loss(output, dropped)
        return output

    def _zero_variance_rows(self, output: dict[str, Any]) -> torch.Tensor | None:
        """Log the share of zero-variance groups; return this process's rows to drop (``drop`` mode only)."""
        rewards, self._last_rewards = self._last_rewards, None
        if rewards is None or self._group_column == -1:
            return None
        if self._group_column is None:  # the weighted total; a row where no reward applied stays NaN
            weights = self.reward_weights.to(rewards.device)
            values = (rewards * weights.unsqueeze(0)).nansum(dim=1)
            values[torch.isnan(rewards).all(dim=1)] = float("nan")
        else:
            values = rewards[:, self._group_column]
        flags = zero_variance_groups(values, self.num_generations)  # (N_all / num_generations,)
        self._metrics["train"]["behaviour/zero_variance_groups"].append(flags.float().mean().item())
        if self.zero_variance != "drop":
            return None
        self._metrics["train"]["behaviour/groups_dropped"].append(flags.float().mean().item())
        rows = flags.repeat_interleave(self.num_generations)  # (N_all,)
        local = output["advantages"].shape[0]
        start = self.accelerator.process_index * local  # TRL's process slice of the gathered batch
        return rows[start:start + local].to(output["advantages"].device)

    def _drop_from_loss(self, output: dict[str, Any], dropped: torch.Tensor) -> None:
        """Mask the dropped rows out of the loss and recount the loss tokens (a collective: every process calls it)."""
        keep = (~dropped).to(output["completion_mask"].dtype).unsqueeze(1)  # (B, 1)
        output["completion_mask"] = output["completion_mask"] * keep
        loss_mask = output["completion_mask"]
        if "tool_mask" in output:
            loss_mask = loss_mask * output["tool_mask"]
        output["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()

    def _trace(self, inputs: list[dict[str, Any]], output: dict[str, Any]) -> None:
        """Gather this generation batch from every process; the main process measures and writes it."""
        completion_ids = output["completion_ids"]  # (B, T) right-padded
        mask = output["completion_mask"]  # (B, T)
        eos = torch.tensor(self.eos_token_ids, device=completion_ids.device)
        local = {
            "rows": list(inputs),
            "texts": self.processing_class.batch_decode(completion_ids, skip_special_tokens=True),
            "lengths": mask.sum(dim=1).tolist(),
            "truncated": (~torch.isin(completion_ids, eos).any(dim=1)).tolist(),
            "advantages": output["advantages"].tolist(),
        }
        # gather_object concatenates lists in process order, matching TRL's gathered reward logs
        gathered = {key: gather_object(value) for key, value in local.items()}
        if not self.accelerator.is_main_process:
            return
        n = len(gathered["rows"])
        rewards = {}
        for name in self.reward_func_names:
            values = list(self._logs["rewards"][name])[-n:]
            rewards[name] = [None if v != v else v for v in values]
        metrics = self.tracer.observe(
            step=self.state.global_step + 1,
            rows=gathered["rows"],
            completions=gathered["texts"],
            rewards=rewards,
            weights=self.reward_weights.tolist(),
            advantages=gathered["advantages"],
            completion_tokens=gathered["lengths"],
            truncated=gathered["truncated"],
            tokenizer=self.processing_class,
        )
        for key, value in metrics.items():
            if value is not None:
                self._metrics["train"][key].append(value)
