"""Generators of reference ONNX models (MLPerf Tiny and a few others) with seeded weights."""

from ndpsim.zoo.builder import GraphBuilder, Tensor, same_pads
from ndpsim.zoo.mlperf_tiny import (
    ad_fc_autoencoder,
    ic_resnet8,
    kws_dscnn,
    sww_streaming_wakeword,
    vww_mobilenetv1_025,
)
from ndpsim.zoo.others import mobilenetv2_like, resnet50_like, squeezenet_like
from ndpsim.zoo.stats import count_macs, count_params

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
    "GraphBuilder",
    "Tensor",
    "ad_fc_autoencoder",
    "count_macs",
    "count_params",
    "ic_resnet8",
    "kws_dscnn",
    "mobilenetv2_like",
    "resnet50_like",
    "same_pads",
    "squeezenet_like",
    "sww_streaming_wakeword",
    "vww_mobilenetv1_025",
]
