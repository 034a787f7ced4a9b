"""Generators of reference ONNX models (MLPerf Tiny and a few others) with seeded weights,
and parameterised real network families for the estimator (`ndpsim.zoo.families`)."""

from ndpsim.zoo.builder import GraphBuilder, Tensor, same_pads
from ndpsim.zoo.families import NETWORK_FAMILIES, build_network, network_stats, sample_spec
from ndpsim.zoo.mlperf_tiny import (
    ad_fc_autoencoder,
    ic_resnet8,
    kws_dscnn,
    sww_streaming_wakeword,
    vww_mobilenetv1_025,
)
from ndpsim.zoo.others import mobilenetv2_like, resnet50_like, squeezenet_like
from ndpsim.zoo.stats import count_macs, count_params, count_weights

# The models written to models/ by models/generate.py, by file stem.
MLPERF_TINY = {
    "kws_dscnn": kws_dscnn,
    "vww_mobilenetv1_025": vww_mobilenetv1_025,
    "ic_resnet8": ic_resnet8,
    "ad_fc_autoencoder": ad_fc_autoencoder,
    "sww_streaming_wakeword": sww_streaming_wakeword,
}

__all__ = [
    "MLPERF_TINY",
    "NETWORK_FAMILIES",
    "GraphBuilder",
    "Tensor",
    "ad_fc_autoencoder",
    "build_network",
    "count_macs",
    "count_params",
    "count_weights",
    "ic_resnet8",
    "kws_dscnn",
    "mobilenetv2_like",
    "network_stats",
    "resnet50_like",
    "same_pads",
    "sample_spec",
    "squeezenet_like",
    "sww_streaming_wakeword",
    "vww_mobilenetv1_025",
]
