"""Where a vLLM setting lives in a workload, and how to change it there (SCENARIOS.md's rule).

The flag in the command line (``--flag v``, ``--flag=v``, or inside a shell string); when its
value is ``$(VAR)`` the env var VAR; else the setting's own env var; else a flag is added. The
same containers are what model-size facts (weights, precision) are read from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.fixes import argv, pointer
from bot.fixes.builder import PatchBuilder, Refuse

TEMPLATE_SPEC = ("spec", "template", "spec")


@dataclass(frozen=True)
class Setting:
    """A vLLM engine argument and the env var serving manifests use for it."""

    flag: str
    env: str
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return argv.spellings(self.flag, self.aliases)


GPU_MEMORY_UTILIZATION = Setting("--gpu-memory-utilization", "GPU_MEMORY_UTILIZATION")
MAX_NUM_SEQS = Setting("--max-num-seqs", "MAX_NUM_SEQS")
MAX_MODEL_LEN = Setting("--max-model-len", "MAX_MODEL_LEN")
QUANTIZATION = Setting("--quantization", "QUANTIZATION", ("-q",))
TENSOR_PARALLEL_SIZE = Setting("--tensor-parallel-size", "TENSOR_PARALLEL_SIZE", ("-tp",))
DTYPE = Setting("--dtype", "DTYPE")
MODEL = Setting("--model", "MODEL")


@dataclass(frozen=True)
class Container:
    """One container of the pod template, with its index (paths) and name (diffs, pins)."""

    index: int
    spec: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.spec.get("name", self.index))

    def path(self, *tokens: str | int) -> str:
        return pointer.join(*TEMPLATE_SPEC, "containers", self.index, *tokens)

    def pin(self, b: PatchBuilder) -> None:
        """Every change to a container first tests that index still holds this container."""
        b.pin(self.path("name"), self.spec.get("name"))

    def label(self, where: str) -> str:
        return f"containers[{self.name}].{where}"


def containers(obj: Mapping[str, Any]) -> list[Container]:
    """The pod template's containers (init containers never serve)."""
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [Container(i, c) for i, c in enumerate(spec.get("containers") or [])]


def vllm_containers(obj: Mapping[str, Any]) -> list[Container]:
    """Containers that run vLLM; Refuse when there are none."""
    found = [c for c in containers(obj) if argv.runs_vllm(c.spec)]
    if not found:
        raise Refuse("no container runs vLLM (vllm/vllm-openai, vllm serve, vllm.entrypoints)")
    return found


def gpu_containers(obj: Mapping[str, Any]) -> list[Container]:
    """Containers that request or limit nvidia.com/gpu."""
    out = []
    for c in containers(obj):
        resources = c.spec.get("resources") or {}
        asks = [(resources.get(k) or {}).get("nvidia.com/gpu") for k in ("limits", "requests")]
        if any(str(v).strip() not in ("", "0", "None") for v in asks if v is not None):
            out.append(c)
    return out


def env_entry(c: Container, name: str) -> tuple[int, Mapping[str, Any]] | None:
    """The entry that sets ``name`` (the last one wins, as in Kubernetes)."""
    found = None
    for i, entry in enumerate(c.spec.get("env") or []):
        if isinstance(entry, Mapping) and entry.get("name") == name:
            found = (i, entry)
    return found


def env_value(c: Container, name: str) -> str | None:
    """The literal value of env var ``name``; Refuse when it comes from a Secret or ConfigMap."""
    found = env_entry(c, name)
    if found is None:
        return None
    if "valueFrom" in found[1]:
        raise Refuse(f"{c.label('env')}.{name} comes from valueFrom; change its source instead")
    return str(found[1].get("value", ""))


def set_env(b: PatchBuilder, c: Container, name: str, new: str) -> str | None:
    """Set env var ``name`` to ``new`` (changing it in place or appending it); the old value."""
    old = env_value(c, name)
    c.pin(b)
    found = env_entry(c, name)
    if found is not None:
        index = found[0]
        b.pin(c.path("env", index, "name"), name)
        b.set(c.path("env", index, "value"), new)
    elif isinstance(c.spec.get("env"), list):
        b.add(c.path("env", "-"), {"name": name, "value": new})
    else:
        b.add(c.path("env"), [{"name": name, "value": new}])
    b.line(f"{c.label('env')}.{name}: {old if old is not None else '(unset)'} → {new}")
    return old


_ENV_REF = re.compile(r"^\$\((?P<k>\w+)\)$")
_SHELL_REF = re.compile(r"^\$(?:\{(?P<b>\w+)\}|(?P<p>\w+))$")


@dataclass(frozen=True)
class Current:
    """Where a setting's effective value comes from now, and that value (None = vLLM default)."""

    value: str | None
    hit: argv.FlagHit | None = None
    env: str | None = None
    """The env var the value lives in (the setting's own, or the one ``$(VAR)`` names)."""


def current(c: Container, setting: Setting) -> Current:
    """Follow SCENARIOS.md's order: flag (or the env var it references), env var, default."""
    hit = argv.find_flag(c.spec, setting.names)
    if hit is not None:
        ref = _ENV_REF.match(hit.value) or (
            _SHELL_REF.match(hit.value) if hit.form == "script" else None
        )
        if ref is None:
            return Current(hit.value, hit)
        var = next(g for g in ref.groups() if g)
        value = env_value(c, var)
        if value is None:
            raise Refuse(
                f"{c.label(hit.flag.field)}: {hit.spelled} {hit.value} names env var {var}, "
                "which the container does not set"
            )
        return Current(value, hit, var)
    value = env_value(c, setting.env)
    if value is not None:
        return Current(value, None, setting.env)
    return Current(None)


def write(b: PatchBuilder, c: Container, setting: Setting, now: Current, new: str) -> None:
    """Change the setting where it lives (see ``current``), or add the flag to vLLM's args."""
    if now.env is not None:
        set_env(b, c, now.env, new)
        return
    c.pin(b)
    hit = now.hit
    if hit is not None:
        where = c.label(hit.flag.field)
        if hit.form == "separate":
            b.pin(c.path(hit.flag.field, hit.flag.index), hit.flag.text)
        b.replace(
            c.path(hit.value_at.field, hit.value_at.index), hit.value_at.text, hit.rewritten(new)
        )
        b.line(f"{where}: {hit.spelled} {hit.value} → {new}")
        return
    _add_flag(b, c, setting.flag, new)


def _add_flag(b: PatchBuilder, c: Container, flag: str, value: str) -> None:
    place = argv.insertion(c.spec, flag, value)
    if place.script is not None:
        b.replace(c.path(place.script.field, place.script.index), place.script.text, place.new_text)
        b.line(f"{c.label(place.script.field)} (shell): + {flag} {value}")
        return
    if isinstance(c.spec.get("args"), list):
        b.add(c.path("args", "-"), flag)
        b.add(c.path("args", "-"), value)
    else:
        b.add(c.path("args"), [flag, value])
    b.line(f"{c.label('args')}: + {flag} {value}")


# Model facts: weights from the name's size tag, bytes per parameter from the precision.

_SIZE_TAG = re.compile(
    r"(?i)(?<![a-z0-9.])(?:(?P<experts>\d+)x)?(?P<n>\d+(?:\.\d+)?)(?P<u>[bm])(?![a-z0-9])"
)
_FOUR_BIT = ("awq", "gptq", "int4", "4bit", "bitsandbytes", "bnb", "w4a16", "nf4", "marlin")
_EIGHT_BIT = ("fp8", "int8", "w8a8", "w8a16", "8bit")


def model_name(c: Container) -> str | None:
    """The model vLLM loads: ``--model`` (or its env var), else ``vllm serve MODEL``."""
    now = current(c, MODEL)
    return now.value if now.value is not None else argv.positional_model(c.spec)


def parameters(model: str) -> float | None:
    """Parameters from the name's size tag (``70B`` → 70e9; ``8x7B`` counts every expert)."""
    sizes = []
    for match in _SIZE_TAG.finditer(model):
        scale = 1e9 if match["u"].lower() == "b" else 1e6
        sizes.append(float(match["n"]) * scale * int(match["experts"] or 1))
    return max(sizes) if sizes else None


def precision_words(text: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", text.lower()) if w} | {text.lower()}


def bytes_per_parameter(quantization: str | None, model: str, dtype: str | None) -> float:
    """2 for fp16/bf16, 1 for 8-bit (fp8, int8), 0.5 for 4-bit (awq, gptq, int4, bitsandbytes)."""
    for source in (quantization or "", model):
        words = precision_words(source)
        if any(any(tag in w for tag in _FOUR_BIT) for w in words):
            return 0.5
        if any(any(tag in w for tag in _EIGHT_BIT) for w in words):
            return 1.0
    if dtype and dtype.lower() in ("float32", "float", "fp32"):
        return 4.0
    return 2.0
