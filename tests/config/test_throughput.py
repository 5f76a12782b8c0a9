"""Validation of the throughput settings: graph-only options and length-sorted micro-batches."""

from __future__ import annotations

import pytest
from helpers import base_config

from ahazero.config.schema import ConfigError, validate_dict
from ahazero.config.validate import check_config


def cfg_with(**changes):
    return validate_dict(base_config(**changes))


def test_graph_options_with_another_named_backend_are_an_error():
    with pytest.raises(ConfigError, match=r"generation.share_prefill applies to the 'graph' backend only; "
                                          r"generation.backend is 'compiled'"):
        check_config(cfg_with(generation={"backend": "compiled", "share_prefill": True}), cuda=True)
    for bad in (-1, "all", True):
        with pytest.raises(ConfigError, match=r"generation.max_rows' \(.*\): give 0 \(the whole batch at once\), "
                                              r"a positive number of rows, or 'auto'"):
            cfg_with(generation={"max_rows": bad})
    assert cfg_with(generation={"max_rows": "auto"}).generation.max_rows == "auto"


def test_auto_without_a_gpu_warns_that_the_graph_options_are_unused(caplog):
    cfg = cfg_with(generation={"compact_rows": True, "max_rows": 256})
    with caplog.at_level("WARNING", logger="ahazero.config.throughput"):
        assert check_config(cfg, cuda=False).backend == "hf"
    assert ("generation.compact_rows, generation.max_rows: generation.backend 'auto' picked 'hf' here, "
            "which does not use them") in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="ahazero.config.throughput"):
        assert check_config(cfg, cuda=True).backend == "graph"
    assert caplog.text == ""


@pytest.mark.parametrize(("grpo", "reason"), [
    ({"loss_type": "bnpo"}, "loss_type 'bnpo' normalises each micro-batch"),
    ({"top_entropy_quantile": 0.2}, "top_entropy_quantile < 1"),
    ({"entropy_coef": 0.01}, "the entropy bonus"),
    ({"steps_per_generation": 3, "gradient_accumulation_steps": 2}, r"steps_per_generation \(3\) is not a multiple"),
])
def test_sort_by_length_refuses_losses_it_would_change(grpo, reason):
    cfg = cfg_with(update={"sort_by_length": True},
                   grpo={"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 2, **grpo})
    with pytest.raises(ConfigError, match=f"update.sort_by_length would change the gradient: .*{reason}"):
        check_config(cfg, cuda=False)
    ok = cfg_with(update={"sort_by_length": True}, grpo={"num_generations": 4, "per_device_train_batch_size": 8,
                                                        "loss_type": "dr_grpo"})
    check_config(ok, cuda=False)


def test_shared_prompts_need_packing_and_a_loss_that_regrouping_leaves_alone():
    grpo = {"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 2}
    with pytest.raises(ConfigError, match="update.share_prompts shares prompts inside packed micro-batches: set "
                                          "update.packing: true too"):
        check_config(cfg_with(update={"share_prompts": True}, grpo=grpo), cuda=False)
    with pytest.raises(ConfigError, match="update.share_prompts would change the gradient: .*'bnpo'"):
        check_config(cfg_with(update={"packing": True, "share_prompts": True}, grpo={**grpo, "loss_type": "bnpo"}),
                     cuda=False)
    # packing alone changes how a micro-batch is computed, not what it holds: every loss keeps its gradient
    check_config(cfg_with(update={"packing": True}, grpo={**grpo, "loss_type": "bnpo"}), cuda=False)
