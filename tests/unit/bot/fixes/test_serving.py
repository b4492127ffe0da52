"""vLLM settings change where the workload sets them: flag, ``--flag=``, $(VAR), env, or added."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from bot.fixes import catalog

MODEL = "meta-llama/Llama-2-7b-hf"
C0 = 0  # the vLLM container's index in these workloads


def _container(obj: dict[str, Any], index: int = C0) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]["containers"][index]


def _vllm(args: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "vllm",
        "image": "vllm/vllm-openai:v0.11.0",
        "args": args if args is not None else ["--model", MODEL],
        "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "32Gi"}},
    }
    container.update(fields)
    return container


# code, flag, env var, old value, new value
SETTINGS = [
    (
        "lower-gpu-memory-utilization",
        "--gpu-memory-utilization",
        "GPU_MEMORY_UTILIZATION",
        "0.95",
        "0.85",
    ),
    ("limit-max-num-seqs", "--max-num-seqs", "MAX_NUM_SEQS", "256", "128"),
    ("limit-max-model-len", "--max-model-len", "MAX_MODEL_LEN", "8192", "4096"),
    ("increase-tensor-parallel", "--tensor-parallel-size", "TENSOR_PARALLEL_SIZE", "1", "8"),
]
TP_MODEL = "meta-llama/Meta-Llama-3-70B-Instruct"  # 70B fp16 on p4d (40 GiB): 8 GPUs


def _model_for(code: str) -> str:
    return TP_MODEL if code == "increase-tensor-parallel" else MODEL


def _expect_gpus(code: str, expected: dict[str, Any]) -> None:
    if code == "increase-tensor-parallel":
        _container(expected)["resources"]["limits"]["nvidia.com/gpu"] = "8"


@pytest.mark.parametrize(("code", "flag", "env", "old", "new"), SETTINGS)
def test_flag_with_separate_value_is_changed_in_place(
    *,
    code: str,
    flag: str,
    env: str,
    old: str,
    new: str,
    deployment: Callable[..., Any],
    context: Any,
    verify: Any,
) -> None:
    obj = deployment([_vllm(["--model", _model_for(code), flag, old, "--port", "8000"])])
    fix = catalog.build(code, obj, context=context())
    expected = copy.deepcopy(obj)
    _container(expected)["args"][3] = new
    _expect_gpus(code, expected)
    verify(obj, fix, expected)
    assert f"containers[vllm].args: {flag} {old} → {new}" in fix.diff
    assert {
        "op": "test",
        "path": "/spec/template/spec/containers/0/args/2",
        "value": flag,
    } in fix.ops


@pytest.mark.parametrize(("code", "flag", "env", "old", "new"), SETTINGS)
def test_flag_with_equals_value_is_rewritten(
    *,
    code: str,
    flag: str,
    env: str,
    old: str,
    new: str,
    deployment: Callable[..., Any],
    context: Any,
    verify: Any,
) -> None:
    obj = deployment([_vllm(["--model", _model_for(code), f"{flag}={old}"])])
    fix = catalog.build(code, obj, context=context())
    expected = copy.deepcopy(obj)
    _container(expected)["args"][2] = f"{flag}={new}"
    _expect_gpus(code, expected)
    verify(obj, fix, expected)


@pytest.mark.parametrize(("code", "flag", "env", "old", "new"), SETTINGS)
def test_flag_referencing_an_env_var_changes_that_env_var(
    *,
    code: str,
    flag: str,
    env: str,
    old: str,
    new: str,
    deployment: Callable[..., Any],
    context: Any,
    verify: Any,
) -> None:
    container = _vllm(
        ["--model", _model_for(code), flag, "$(VLLM_KNOB)"],
        env=[{"name": "HF_HOME", "value": "/models"}, {"name": "VLLM_KNOB", "value": old}],
    )
    obj = deployment([container])
    fix = catalog.build(code, obj, context=context())
    expected = copy.deepcopy(obj)
    _container(expected)["env"][1]["value"] = new
    _expect_gpus(code, expected)
    verify(obj, fix, expected)
    assert f"containers[vllm].env.VLLM_KNOB: {old} → {new}" in fix.diff
    assert {
        "op": "test",
        "path": "/spec/template/spec/containers/0/env/1/name",
        "value": "VLLM_KNOB",
    } in fix.ops


@pytest.mark.parametrize(("code", "flag", "env", "old", "new"), SETTINGS)
def test_env_var_alone_is_changed(
    *,
    code: str,
    flag: str,
    env: str,
    old: str,
    new: str,
    deployment: Callable[..., Any],
    context: Any,
    verify: Any,
) -> None:
    obj = deployment([_vllm(["--model", _model_for(code)], env=[{"name": env, "value": old}])])
    fix = catalog.build(code, obj, context=context())
    expected = copy.deepcopy(obj)
    _container(expected)["env"][0]["value"] = new
    _expect_gpus(code, expected)
    verify(obj, fix, expected)


@pytest.mark.parametrize(("code", "flag", "env", "old", "new"), SETTINGS)
def test_neither_flag_nor_env_appends_the_flag(
    *,
    code: str,
    flag: str,
    env: str,
    old: str,
    new: str,
    deployment: Callable[..., Any],
    context: Any,
    verify: Any,
) -> None:
    obj = deployment([_vllm(["--model", _model_for(code)])])
    fix = catalog.build(code, obj, context=context())
    expected = copy.deepcopy(obj)
    appended = "0.85" if code == "lower-gpu-memory-utilization" else new
    _container(expected)["args"] += [flag, appended]
    _expect_gpus(code, expected)
    verify(obj, fix, expected)
    assert f"containers[vllm].args: + {flag} {appended}" in fix.diff


@pytest.mark.parametrize(("code", "flag", "env", "old", "new"), SETTINGS)
def test_flag_inside_a_shell_string_is_changed_in_the_string(
    *,
    code: str,
    flag: str,
    env: str,
    old: str,
    new: str,
    deployment: Callable[..., Any],
    context: Any,
    verify: Any,
) -> None:
    script = f"ray start --head && exec vllm serve {_model_for(code)} {flag} {old} --port 8000"
    obj = deployment([_vllm([script], command=["/bin/bash", "-c"], image="example/serving:1")])
    fix = catalog.build(code, obj, context=context())
    expected = copy.deepcopy(obj)
    _container(expected)["args"][0] = script.replace(f"{flag} {old}", f"{flag} {new}")
    _expect_gpus(code, expected)
    verify(obj, fix, expected)


@pytest.mark.parametrize(("code", "flag", "env", "old", "new"), SETTINGS)
def test_absent_flag_goes_after_the_model_in_a_shell_string(
    *,
    code: str,
    flag: str,
    env: str,
    old: str,
    new: str,
    deployment: Callable[..., Any],
    context: Any,
    verify: Any,
) -> None:
    model = _model_for(code)
    script = f"ray start --head && exec vllm serve {model} --port 8000 && echo done"
    obj = deployment([_vllm([script], command=["/bin/bash", "-c"], image="example/serving:1")])
    fix = catalog.build(code, obj, context=context())
    expected = copy.deepcopy(obj)
    appended = "0.85" if code == "lower-gpu-memory-utilization" else new
    _container(expected)["args"][0] = script.replace(model, f"{model} {flag} {appended}")
    _expect_gpus(code, expected)
    verify(obj, fix, expected)


def test_underscore_spelling_and_the_last_occurrence_count(
    *, deployment: Callable[..., Any], context: Any, verify: Any
) -> None:
    obj = deployment([_vllm(["--model", MODEL, "--max-num-seqs", "512", "--max_num_seqs", "300"])])
    fix = catalog.build("limit-max-num-seqs", obj, context=context())
    expected = copy.deepcopy(obj)
    _container(expected)["args"][5] = "128"
    verify(obj, fix, expected)


def test_positional_model_after_vllm_serve_in_command(
    *, deployment: Callable[..., Any], context: Any, verify: Any
) -> None:
    container = _vllm(
        [TP_MODEL, "-tp", "2"], command=["vllm", "serve"], image="example.com/serving:1"
    )
    obj = deployment([container])
    fix = catalog.build("increase-tensor-parallel", obj, context=context("p4d.24xlarge"))
    expected = copy.deepcopy(obj)
    _container(expected)["args"][2] = "8"
    _container(expected)["resources"]["limits"]["nvidia.com/gpu"] = "8"
    verify(obj, fix, expected)


def test_reference_to_an_unset_env_var_is_refused(
    *, deployment: Callable[..., Any], context: Any, refused: Any
) -> None:
    obj = deployment([_vllm(["--model", MODEL, "--max-num-seqs", "$(SEQS)"])])
    refused(catalog.build("limit-max-num-seqs", obj, context=context()), "SEQS")


def test_env_from_a_secret_is_refused(
    *, deployment: Callable[..., Any], context: Any, refused: Any
) -> None:
    env = [
        {"name": "MAX_NUM_SEQS", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "seqs"}}}
    ]
    obj = deployment([_vllm(["--model", MODEL], env=env)])
    refused(catalog.build("limit-max-num-seqs", obj, context=context()), "valueFrom")


@pytest.mark.parametrize(
    ("old", "new"),
    [("0.95", "0.85"), ("0.9", "0.85"), ("0.85", "0.8"), ("0.7", "0.65"), ("0.52", "0.5")],
)
def test_gpu_memory_utilization_steps(
    *, old: str, new: str, deployment: Callable[..., Any], context: Any, verify: Any
) -> None:
    obj = deployment([_vllm(["--model", MODEL, "--gpu-memory-utilization", old])])
    expected = copy.deepcopy(obj)
    _container(expected)["args"][3] = new
    verify(obj, catalog.build("lower-gpu-memory-utilization", obj, context=context()), expected)


@pytest.mark.parametrize("old", ["0.5", "0.45"])
def test_gpu_memory_utilization_floor(
    *, old: str, deployment: Callable[..., Any], context: Any, refused: Any
) -> None:
    obj = deployment([_vllm(["--model", MODEL, "--gpu-memory-utilization", old])])
    refused(catalog.build("lower-gpu-memory-utilization", obj, context=context()), "floor")


@pytest.mark.parametrize(
    ("old", "new"), [("1024", "128"), ("129", "128"), ("128", "64"), ("3", "1"), ("2", "1")]
)
def test_max_num_seqs_steps(
    *, old: str, new: str, deployment: Callable[..., Any], context: Any, verify: Any
) -> None:
    obj = deployment([_vllm(["--model", MODEL, "--max-num-seqs", old])])
    expected = copy.deepcopy(obj)
    _container(expected)["args"][3] = new
    verify(obj, catalog.build("limit-max-num-seqs", obj, context=context()), expected)


def test_max_num_seqs_of_one_is_refused(
    *, deployment: Callable[..., Any], context: Any, refused: Any
) -> None:
    obj = deployment([_vllm(["--model", MODEL, "--max-num-seqs", "1"])])
    refused(catalog.build("limit-max-num-seqs", obj, context=context()), "cannot be lowered")


@pytest.mark.parametrize("old", ["4096", "2048", "4k"])
def test_max_model_len_already_short_is_refused(
    *, old: str, deployment: Callable[..., Any], context: Any, refused: Any
) -> None:
    obj = deployment([_vllm(["--model", MODEL, "--max-model-len", old])])
    refused(catalog.build("limit-max-model-len", obj, context=context()), "at most 4096")


def test_max_model_len_in_human_form(
    *, deployment: Callable[..., Any], context: Any, verify: Any
) -> None:
    obj = deployment([_vllm(["--model", MODEL, "--max-model-len=32K"])])
    expected = copy.deepcopy(obj)
    _container(expected)["args"][2] = "--max-model-len=4096"
    verify(obj, catalog.build("limit-max-model-len", obj, context=context()), expected)


@pytest.mark.parametrize(("old", "new"), [("64", "32"), ("3", "1"), ("2", "1")])
def test_batch_size_is_halved(
    *, old: str, new: str, deployment: Callable[..., Any], context: Any, verify: Any
) -> None:
    obj = deployment([_vllm(env=[{"name": "MAX_BATCH_SIZE", "value": old}])])
    expected = copy.deepcopy(obj)
    _container(expected)["env"][0]["value"] = new
    fix = verify(obj, catalog.build("reduce-batch-size", obj, context=context()), expected)
    assert f"env.MAX_BATCH_SIZE: {old} → {new}" in fix.diff


@pytest.mark.parametrize(
    ("env", "words"),
    [([{"name": "MAX_BATCH_SIZE", "value": "1"}], "cannot be halved"), ([], "no container sets")],
)
def test_batch_size_refusals(
    *, env: list[Any], words: str, deployment: Callable[..., Any], context: Any, refused: Any
) -> None:
    obj = deployment([_vllm(env=env)])
    refused(catalog.build("reduce-batch-size", obj, context=context()), words)


def test_quantization_flag_is_appended(
    *, deployment: Callable[..., Any], context: Any, verify: Any
) -> None:
    obj = deployment([_vllm()])
    expected = copy.deepcopy(obj)
    _container(expected)["args"] += ["--quantization", "fp8"]
    verify(obj, catalog.build("enable-quantization", obj, context=context()), expected)


def test_quantization_env_var_is_set(
    *, deployment: Callable[..., Any], context: Any, verify: Any
) -> None:
    obj = deployment([_vllm(env=[{"name": "QUANTIZATION", "value": ""}])])
    expected = copy.deepcopy(obj)
    _container(expected)["env"][0]["value"] = "fp8"
    verify(obj, catalog.build("enable-quantization", obj, context=context()), expected)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--model", MODEL, "--quantization", "awq"], "already awq"),
        (["--model", MODEL, "-q", "fp8"], "already fp8"),
        (["--model", "TheBloke/Llama-2-7B-AWQ"], "quantized checkpoint"),
        (["--model", "neuralmagic/Meta-Llama-3-70B-Instruct-FP8"], "quantized checkpoint"),
    ],
)
def test_quantization_refusals(
    *, args: list[str], words: str, deployment: Callable[..., Any], context: Any, refused: Any
) -> None:
    obj = deployment([_vllm(args)])
    refused(catalog.build("enable-quantization", obj, context=context()), words)


@pytest.mark.parametrize(
    ("code", "var", "old", "new"),
    [
        ("increase-nccl-timeout", "NCCL_TIMEOUT", "600", "1800"),
        ("increase-request-timeout", "REQUEST_TIMEOUT", "60", "300"),
    ],
)
def test_timeouts_change_the_env_var_where_it_is_set(
    *,
    code: str,
    var: str,
    old: str,
    new: str,
    deployment: Callable[..., Any],
    context: Any,
    verify: Any,
) -> None:
    gateway = {
        "name": "gateway",
        "image": "example/gateway:1",
        "env": [{"name": "LOG", "value": "info"}, {"name": var, "value": old}],
    }
    obj = deployment([gateway])
    expected = copy.deepcopy(obj)
    _container(expected)["env"][1]["value"] = new
    fix = verify(obj, catalog.build(code, obj, context=context()), expected)
    assert f"containers[gateway].env.{var}: {old} → {new}" in fix.diff


@pytest.mark.parametrize(
    ("code", "var", "new"),
    [
        ("increase-nccl-timeout", "NCCL_TIMEOUT", "1800"),
        ("increase-request-timeout", "REQUEST_TIMEOUT", "300"),
    ],
)
def test_timeouts_unset_are_added_to_the_vllm_container(
    *, code: str, var: str, new: str, deployment: Callable[..., Any], context: Any, verify: Any
) -> None:
    sidecar = {"name": "proxy", "image": "envoyproxy/envoy:v1.31"}
    with_env = deployment([sidecar, _vllm(env=[{"name": "HF_HOME", "value": "/models"}])])
    expected = copy.deepcopy(with_env)
    _container(expected, 1)["env"].append({"name": var, "value": new})
    verify(with_env, catalog.build(code, with_env, context=context()), expected)

    without_env = deployment([_vllm()])
    expected = copy.deepcopy(without_env)
    _container(expected)["env"] = [{"name": var, "value": new}]
    verify(without_env, catalog.build(code, without_env, context=context()), expected)


@pytest.mark.parametrize(
    ("code", "var", "old"),
    [
        ("increase-nccl-timeout", "NCCL_TIMEOUT", "3600"),
        ("increase-request-timeout", "REQUEST_TIMEOUT", "300"),
    ],
)
def test_timeouts_already_long_enough_are_refused(
    *, code: str, var: str, old: str, deployment: Callable[..., Any], context: Any, refused: Any
) -> None:
    obj = deployment([_vllm(env=[{"name": var, "value": old}])])
    refused(catalog.build(code, obj, context=context()), "already at least")


def test_no_vllm_container_is_refused_for_vllm_settings(
    *, deployment: Callable[..., Any], context: Any, refused: Any
) -> None:
    obj = deployment([{"name": "tgi", "image": "ghcr.io/huggingface/text-generation-inference:2"}])
    for code in (
        "lower-gpu-memory-utilization",
        "limit-max-num-seqs",
        "enable-quantization",
        "limit-max-model-len",
        "increase-tensor-parallel",
        "increase-request-timeout",
    ):
        refused(catalog.build(code, obj, context=context()), "no container runs vLLM")


def test_every_vllm_container_changes_and_one_at_the_floor_is_skipped(
    *, deployment: Callable[..., Any], context: Any, verify: Any
) -> None:
    a = _vllm(["--model", MODEL, "--gpu-memory-utilization", "0.5"])
    b = dict(_vllm(["--model", MODEL, "--gpu-memory-utilization", "0.95"]), name="vllm-b")
    obj = deployment([a, b])
    expected = copy.deepcopy(obj)
    _container(expected, 1)["args"][3] = "0.85"
    fix = verify(
        obj, catalog.build("lower-gpu-memory-utilization", obj, context=context()), expected
    )
    assert fix.diff == "containers[vllm-b].args: --gpu-memory-utilization 0.95 → 0.85"
