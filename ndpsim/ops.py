"""The one list of ONNX ops ndpsim accepts. The frontend refuses anything else by name;
the lowering has a rule for each entry (a test checks both agree)."""

# Ops the lowering maps onto the machine (macros, vector unit, DMA) or aliases in memory.
SUPPORTED_OPS: frozenset[str] = frozenset(
    {
        "Conv", "Gemm", "MatMul", "BatchNormalization",
        "Relu", "Clip", "LeakyRelu",
        "Add", "Sub", "Mul", "Sum",
        "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Sqrt", "Pow", "LRN",
        "Slice", "Split", "Gather", "ReduceMean", "Resize",
        "LSTM", "GRU", "Cast",
        "MaxPool", "AveragePool", "GlobalAveragePool",
        "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
        "Softmax", "Concat", "Pad", "Identity", "Dropout",
    }
)  # fmt: skip

# Ops the frontend evaluates at import time when every input is a constant (shape
# arithmetic in PyTorch exports); a node of these with a non-constant input is refused.
FOLDABLE_OPS: frozenset[str] = frozenset(
    {
        "Constant", "Shape", "Gather", "Cast", "Concat", "Unsqueeze", "Squeeze",
        "Reshape", "Slice", "Add", "Sub", "Mul", "Div", "ConstantOfShape", "Range",
        "Identity", "Transpose", "Flatten", "ReduceProd", "Equal", "Where", "Expand",
    }
)  # fmt: skip


def supported_ops_text() -> str:
    """The supported set as one sorted, comma-separated line (for error messages)."""
    return ", ".join(sorted(SUPPORTED_OPS))
