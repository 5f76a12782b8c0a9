"""``GRPOTrainer`` with tracing: each generation step's completions are measured and written.

The subclass hooks the one place where a step's completions, rewards and advantages are
all known (``_generate_and_score_completions``) and otherwise leaves TRL's algorithm alone.

Example:
    >>> trainer = AhaGRPOTrainer(model=model, reward_funcs=funcs, args=args,      # doctest: +SKIP
    ...                          train_dataset=ds, processing_class=tok, tracer=TraceWriter("runs/x/traces"))
"""

from __future__ import annotations

from typing import Any

import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer

from ahazero.tracing import TraceWriter

__all__ = ["AhaGRPOTrainer"]


class AhaGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer plus per-step traces and behaviour metrics."""

    def __init__(self, *args: Any, tracer: TraceWriter | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tracer = tracer

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        if self.tracer is not None and self.model.training:
            self._trace(inputs, output)  # every process takes part: the pieces are gathered
        return output

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
