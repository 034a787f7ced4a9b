"""Parameterised real network families: the networks an estimator must predict.

A *spec* is a JSON-serialisable dict naming a ``family`` and that family's architecture
hyperparameters (width multipliers, depths, kernels, expansions, resolution, ...). Every
family is a published architecture, built layer by layer as its reference implementation
composes it (see the family modules for each one's source and conventions):

- `ndpsim.zoo.families_mobile`: mobilenetv1, mobilenetv2, mobilenetv3, mnasnet,
  efficientnet_lite;
- `ndpsim.zoo.families_cnn`: resnet, shufflenetv2, squeezenet;
- `ndpsim.zoo.families_audio`: dscnn, crnn_kws, gru_kws, lstm_kws;
- ``nas``: the MobileNet-like search space of `ndpsim.zoo.search_space`, its genome
  unchanged under the spec's ``genome`` key (``space`` names the sampler it came from).

The API:

- `sample_spec(family, rng)`: a random spec of the family whose network has at most
  `MAX_MACS` multiply-accumulates, `MAX_PARAMS` parameters and `MAX_RECURRENT_STEPS`
  recurrent steps (specs over the caps are redrawn), so that a timing-only simulation
  stays well under a second;
- `build_network(spec, seed)`: the ONNX model (static shapes, batch 1, seeded weights;
  the same spec and seed give byte-identical models);
- `network_stats(spec)`: parameters and MACs without building the model (the same layer
  code, run by a counting builder; tests check them against `ndpsim.zoo.stats`).

An unknown family or an invalid spec raises ValueError naming the family and the field.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import onnx
from pydantic import ValidationError

from ndpsim.zoo import families_audio, families_cnn, families_mobile, search_space
from ndpsim.zoo.blocks import Family, Spec, pick
from ndpsim.zoo.builder import GraphBuilder, Tensor

# Sampled specs stay below these, so that a timing-only simulation on `generic` stays
# well under a second (benchmarks/zoo_families.py measures it). Convolutional networks
# cost time by layers and tiles: MobileNetV2 1.0 at 224 px (301 M MACs) takes 0.09 s.
# Recurrent ones by unrolled steps: the lowering places every step's ~18 nodes (about
# 2.5 ms per step), so the step cap is what bounds them; it admits the 196 steps of
# models/kws_lstm.onnx (2 bidirectional layers over 49 frames).
MAX_MACS = 400_000_000
MAX_PARAMS = 12_000_000
MAX_RECURRENT_STEPS = 200
# Redraws before `sample_spec` gives up (no family needs more than a handful).
MAX_DRAWS = 200
# build_network refuses larger networks (a valid spec can ask for billions of weights;
# ONNX files stop at 2 GiB): 2.5 x ResNet-50.
MAX_BUILD_PARAMS = 64_000_000


class NasSpec(Spec):
    """A genome of the search space, as is, and the sampler family it came from."""

    family: Literal["nas"] = "nas"
    space: Literal[search_space.FAMILIES] = "random"  # type: ignore[valid-type]
    genome: search_space.Genome

    def input_shape(self) -> tuple[int, ...]:
        return (1, 3, self.genome.resolution, self.genome.resolution)


def _build_nas(spec: NasSpec, b: GraphBuilder) -> Tensor:
    return search_space.build_into(spec.genome, b)


def _sample_nas(rng: np.random.Generator) -> NasSpec:
    space = pick(rng, search_space.FAMILIES)
    return NasSpec(space=space, genome=search_space.sample_genome(rng, space))


_FAMILIES: dict[str, Family] = {
    **families_cnn.FAMILIES,
    **families_mobile.FAMILIES,
    **families_audio.FAMILIES,
    "nas": Family(NasSpec, _build_nas, _sample_nas),
}
NETWORK_FAMILIES: tuple[str, ...] = tuple(_FAMILIES)


def _family(name: object) -> Family:
    if not isinstance(name, str) or name not in _FAMILIES:
        raise ValueError(f"unknown network family {name!r}; one of {', '.join(NETWORK_FAMILIES)}")
    return _FAMILIES[name]


def _parse(spec: object) -> tuple[Family, Spec]:
    if not isinstance(spec, dict):
        raise ValueError(
            f"a network spec must be a dict with a 'family', got {type(spec).__name__}"
        )
    family = _family(spec.get("family"))
    try:
        return family, family.spec.model_validate(spec)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in err.errors()
        )
        raise ValueError(f"bad {spec['family']} spec: {problems}") from None


def _run(family: Family, spec: Spec, seed: int, materialize: bool) -> tuple[GraphBuilder, Tensor]:
    b = GraphBuilder(spec.family, spec.input_shape(), seed, materialize=materialize)
    try:
        out = family.build(spec, b)
    except ValueError as err:  # a combination the architecture cannot take
        raise ValueError(f"bad {spec.family} spec: {err}") from None
    return b, out


def build_network(spec: dict, seed: int = 0) -> onnx.ModelProto:
    """The ONNX model of ``spec`` with weights drawn from ``seed`` (checked, shapes inferred)."""
    family, parsed = _parse(spec)
    counted, _ = _run(family, parsed, seed, materialize=False)
    if counted.params > MAX_BUILD_PARAMS:
        raise ValueError(
            f"{parsed.family} spec asks for {counted.params:,} parameters; "
            f"build_network stops at {MAX_BUILD_PARAMS:,}"
        )
    b, out = _run(family, parsed, seed, materialize=True)
    return b.build(out)


def network_stats(spec: dict) -> dict:
    """``params`` (learned, BatchNorm folded: the model's weight and bias elements),
    ``params_with_bn`` (as PyTorch / Keras count the unfolded network), ``macs``
    (Conv, Gemm, LSTM, GRU), ``recurrent_steps`` (sequence length x directions summed
    over recurrent layers) and ``input_shape`` of ``spec``'s network, without building it."""
    family, parsed = _parse(spec)
    b, _ = _run(family, parsed, 0, materialize=False)
    return {**b.stats(), "input_shape": list(b.input.shape)}


def sample_spec(family: str, rng: np.random.Generator) -> dict:
    """A random spec of ``family`` within `MAX_MACS`, `MAX_PARAMS` and
    `MAX_RECURRENT_STEPS` (deterministic in ``rng``'s state)."""
    fam = _family(family)
    for _ in range(MAX_DRAWS):
        spec = fam.sample(rng).model_dump(mode="json")
        stats = network_stats(spec)
        if (
            stats["macs"] <= MAX_MACS
            and stats["params"] <= MAX_PARAMS
            and stats["recurrent_steps"] <= MAX_RECURRENT_STEPS
        ):
            return spec
    raise RuntimeError(f"{family}: no spec within the caps in {MAX_DRAWS} draws")


__all__ = [
    "MAX_MACS",
    "MAX_PARAMS",
    "MAX_RECURRENT_STEPS",
    "NETWORK_FAMILIES",
    "build_network",
    "network_stats",
    "sample_spec",
]
