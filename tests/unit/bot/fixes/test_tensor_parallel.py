"""increase-tensor-parallel: smallest power of two with weights ÷ size ≤ 60 % of one GPU's memory.

Weights = parameters from the size tag x bytes per parameter (2 fp16/bf16, 1 fp8, 0.5 4-bit);
GPU memory: A100-40 on p4d (40 GiB), A100-80 on p4de and H100 on p5 (80 GiB); 8 GPUs a node.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from bot.fixes import catalog, vllm

MODELS = {
    "7B": "meta-llama/Llama-2-7b-hf",
    "70B": "meta-llama/Meta-Llama-3-70B-Instruct",
    "405B": "meta-llama/Llama-3.1-405B-Instruct",
}
PRECISION_ARGS = {
    "fp16": ["--dtype", "float16"],
    "fp8": ["--quantization", "fp8"],
    "awq": ["--quantization", "awq"],
}
NODES = {"A100-40": "p4d.24xlarge", "A100-80": "p4de.24xlarge", "H100": "p5.48xlarge"}

# (size, precision, gpu) -> the tensor-parallel size needed; None: more than the node's 8 GPUs
NEEDED: dict[tuple[str, str, str], int | None] = {
    ("7B", "fp16", "A100-40"): 1,
    ("7B", "fp16", "A100-80"): 1,
    ("7B", "fp16", "H100"): 1,
    ("7B", "fp8", "A100-40"): 1,
    ("7B", "fp8", "A100-80"): 1,
    ("7B", "fp8", "H100"): 1,
    ("7B", "awq", "A100-40"): 1,
    ("7B", "awq", "A100-80"): 1,
    ("7B", "awq", "H100"): 1,
    ("70B", "fp16", "A100-40"): 8,  # 130 GiB / 24 GiB = 5.4
    ("70B", "fp16", "A100-80"): 4,  # 130 / 48 = 2.7
    ("70B", "fp16", "H100"): 4,
    ("70B", "fp8", "A100-40"): 4,  # 65 / 24 = 2.7
    ("70B", "fp8", "A100-80"): 2,
    ("70B", "fp8", "H100"): 2,
    ("70B", "awq", "A100-40"): 2,  # 33 / 24 = 1.4
    ("70B", "awq", "A100-80"): 1,
    ("70B", "awq", "H100"): 1,
    ("405B", "fp16", "A100-40"): None,  # 754 / 24 = 31.4 -> 32
    ("405B", "fp16", "A100-80"): None,  # 754 / 48 = 15.7 -> 16
    ("405B", "fp16", "H100"): None,
    ("405B", "fp8", "A100-40"): None,  # 377 / 24 = 15.7 -> 16
    ("405B", "fp8", "A100-80"): 8,
    ("405B", "fp8", "H100"): 8,
    ("405B", "awq", "A100-40"): 8,  # 189 / 24 = 7.9
    ("405B", "awq", "A100-80"): 4,
    ("405B", "awq", "H100"): 4,
}


def _deployment(make: Callable[..., Any], size: str, precision: str) -> dict[str, Any]:
    args = ["--model", MODELS[size], *PRECISION_ARGS[precision], "--port", "8000"]
    container = {
        "name": "vllm",
        "image": "vllm/vllm-openai:v0.11.0",
        "args": args,
        "resources": {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 1}},
    }
    return make([container])


@pytest.mark.parametrize(("size", "precision", "gpu"), sorted(NEEDED))
def test_tensor_parallel_size_by_model_precision_and_gpu(
    *, size: str, precision: str, gpu: str, deployment: Any, context: Any, verify: Any, refused: Any
) -> None:
    obj = _deployment(deployment, size, precision)
    fix = catalog.build("increase-tensor-parallel", obj, context=context(NODES[gpu]))
    needed = NEEDED[(size, precision, gpu)]
    if needed is None:
        refused(fix, "has 8 GPUs")
        return
    if needed == 1:
        refused(fix, "fits tensor-parallel-size 1")
        return
    expected = copy.deepcopy(obj)
    container = expected["spec"]["template"]["spec"]["containers"][0]
    container["args"] += ["--tensor-parallel-size", str(needed)]
    container["resources"]["requests"]["nvidia.com/gpu"] = str(needed)
    container["resources"]["limits"]["nvidia.com/gpu"] = str(needed)
    verify(obj, fix, expected)


def test_gpu_limit_added_when_the_container_asks_for_none(
    *, deployment: Any, context: Any, verify: Any
) -> None:
    obj = deployment(
        [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "args": ["--model", MODELS["70B"]]}]
    )
    fix = catalog.build("increase-tensor-parallel", obj, context=context("p5.48xlarge"))
    expected = copy.deepcopy(obj)
    container = expected["spec"]["template"]["spec"]["containers"][0]
    container["args"] += ["--tensor-parallel-size", "4"]
    container.setdefault("resources", {})["limits"] = {"nvidia.com/gpu": "4"}
    verify(obj, fix, expected)


def test_a_current_size_large_enough_is_refused(
    *, deployment: Any, context: Any, refused: Any
) -> None:
    container = {
        "name": "vllm",
        "image": "vllm/vllm-openai:v0.11.0",
        "args": ["--model", MODELS["70B"], "-tp", "8"],
    }
    refused(
        catalog.build(
            "increase-tensor-parallel", deployment([container]), context=context("p4d.24xlarge")
        ),
        "fits tensor-parallel-size 8",
    )


@pytest.mark.parametrize(
    ("model", "words"),
    [("facebook/opt", "no size tag"), (None, "no size tag")],
)
def test_unknown_model_size_is_refused(
    *, model: str | None, words: str, deployment: Any, context: Any, refused: Any
) -> None:
    args = ["--model", model] if model else []
    container = {"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "args": args}
    refused(
        catalog.build("increase-tensor-parallel", deployment([container]), context=context()), words
    )


def test_unknown_node_is_refused(*, deployment: Any, context: Any, refused: Any) -> None:
    obj = _deployment(deployment, "70B", "fp16")
    refused(catalog.build("increase-tensor-parallel", obj, context=context(None)), "unknown")


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("meta-llama/Llama-2-7b-hf", 7e9),
        ("/models/meta-llama/Meta-Llama-3-70B-Instruct", 70e9),
        ("meta-llama/Llama-3.1-405B-Instruct-FP8", 405e9),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 56e9),
        ("Qwen/Qwen2.5-0.5B-Instruct", 0.5e9),
        ("Qwen/Qwen3-30B-A3B", 30e9),
        ("HuggingFaceTB/SmolLM-135M", 135e6),
        ("microsoft/phi-2", None),
    ],
)
def test_parameters_from_size_tags(*, name: str, params: float | None) -> None:
    assert vllm.parameters(name) == params


@pytest.mark.parametrize(
    ("quantization", "model", "dtype", "expected"),
    [
        (None, "meta-llama/Llama-2-7b-hf", None, 2.0),
        (None, "meta-llama/Llama-2-7b-hf", "bfloat16", 2.0),
        (None, "meta-llama/Llama-2-7b-hf", "float32", 4.0),
        ("fp8", "meta-llama/Llama-2-7b-hf", None, 1.0),
        ("awq_marlin", "x/Llama-3.1-8B-Instruct-AWQ-INT4", None, 0.5),
        ("gptq", "x/y-7B", None, 0.5),
        ("bitsandbytes", "x/y-7B", None, 0.5),
        (None, "TheBloke/Llama-2-70B-GPTQ", None, 0.5),
        (None, "unsloth/llama-3-8b-bnb-4bit", None, 0.5),
        (None, "meta-llama/Llama-3.1-405B-Instruct-FP8", None, 1.0),
        (None, "neuralmagic/Meta-Llama-3-8B-Instruct-quantized.w8a8", None, 1.0),
    ],
)
def test_bytes_per_parameter(
    *, quantization: str | None, model: str, dtype: str | None, expected: float
) -> None:
    assert vllm.bytes_per_parameter(quantization, model, dtype) == expected
