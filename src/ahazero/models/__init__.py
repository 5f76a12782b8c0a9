"""The models wing: turn ``model.name_or_path`` into a trainable model and tokenizer.

``loading`` (hub id, local folder, ``.gguf`` or named model; dtype; LoRA settings; a failed
load as one line), ``model_argument`` (is a ``--model`` / ``model.name_or_path`` loadable,
checked before any model loads), ``registry`` (the named models), ``gguf`` (dequantize a GGUF
once into a cached folder) and ``tiny`` (the random 2-layer test model with a locally trained
tokenizer).
It may import ``config``, ``tasks`` and ``cache``; never rollout, training or observe.
"""
