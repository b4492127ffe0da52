"""Recognising vLLM containers and finding flags in the shapes manifests use."""

from __future__ import annotations

from typing import Any

import pytest

from bot.fixes import argv, model

GMU = argv.spellings("--gpu-memory-utilization")


@pytest.mark.parametrize(
    ("container", "runs"),
    [
        ({"image": "vllm/vllm-openai:v0.11.0"}, True),
        ({"image": "public.ecr.aws/x/vllm/vllm-openai:latest"}, True),
        ({"image": "example/serving:1", "command": ["vllm", "serve"]}, True),
        (
            {
                "image": "example/serving:1",
                "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
            },
            True,
        ),
        (
            {
                "image": "example/serving:1",
                "command": ["/bin/bash", "-c"],
                "args": ["ray start && exec vllm serve m"],
            },
            True,
        ),
        ({"image": "example/serving:1", "args": ["ray start --block"]}, False),
        ({"image": "example/myvllm serve"}, False),
        ({"image": "ghcr.io/huggingface/text-generation-inference:2"}, False),
    ],
)
def test_runs_vllm(*, container: dict[str, Any], runs: bool) -> None:
    assert argv.runs_vllm(container) is runs


@pytest.mark.parametrize(
    ("container", "form", "value"),
    [
        ({"args": ["--gpu-memory-utilization", "0.9"]}, "separate", "0.9"),
        ({"args": ["--gpu-memory-utilization=0.9"]}, "equals", "0.9"),
        ({"args": ["--gpu_memory_utilization", "0.8"]}, "separate", "0.8"),
        (
            {"command": ["vllm", "serve", "m", "--gpu-memory-utilization"], "args": ["0.7"]},
            "separate",
            "0.7",
        ),
        ({"args": ["vllm serve m --gpu-memory-utilization 0.6 && echo"]}, "script", "0.6"),
        ({"args": ["vllm serve m --gpu-memory-utilization=$(GMU)"]}, "script", "$(GMU)"),
        (
            {"args": ["--gpu-memory-utilization", "0.9", "--gpu-memory-utilization=0.5"]},
            "equals",
            "0.5",
        ),
    ],
)
def test_find_flag(*, container: dict[str, Any], form: str, value: str) -> None:
    hit = argv.find_flag(container, GMU)
    assert hit is not None
    assert (hit.form, hit.value) == (form, value)


def test_flag_names_do_not_match_longer_flags() -> None:
    assert (
        argv.find_flag({"args": ["--max-num-seqs-x", "1"]}, argv.spellings("--max-num-seqs"))
        is None
    )
    assert (
        argv.find_flag({"args": ["run --xmax-num-seqs 1"]}, argv.spellings("--max-num-seqs"))
        is None
    )


@pytest.mark.parametrize(
    ("container", "model_name"),
    [
        ({"command": ["vllm", "serve"], "args": ["org/m-7B", "--port", "8000"]}, "org/m-7B"),
        ({"args": ["ray start && exec vllm serve org/m-70B --tp 8"]}, "org/m-70B"),
        ({"command": ["vllm", "serve", "--port", "1"]}, None),
    ],
)
def test_positional_model(*, container: dict[str, Any], model_name: str | None) -> None:
    assert argv.positional_model(container) == model_name


def test_node_facts_from_a_lab_node(*, node: Any) -> None:
    facts = model.NodeFacts.from_node(node("p5.48xlarge", name="gpu-h"))
    assert facts == model.NodeFacts("gpu-h", "p5.48xlarge", 2048 * 2**30, 8, 80.0, 32)


def test_node_facts_of_an_unknown_type_keep_what_the_node_says() -> None:
    node = {
        "metadata": {
            "name": "n",
            "labels": {
                "node.kubernetes.io/instance-type": "x9.huge",
                "nvidia.com/gpu.memory": "81920",
            },
        },
        "status": {"capacity": {"memory": "64Gi", "nvidia.com/gpu": "2"}},
    }
    assert model.NodeFacts.from_node(node) == model.NodeFacts(
        "n", "x9.huge", 64 * 2**30, 2, 80.0, None
    )
