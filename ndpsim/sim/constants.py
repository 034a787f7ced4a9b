"""Integer constants the numba core compiles in, derived from isa/isa.toml.

They change only when isa/isa.toml changes, and then the ISA_DIGEST stamp in core.py changes
too, which is what invalidates numba's cache of the kernels (it does not watch this file).
"""

from ndpsim.isa import DESC_FIELDS, Act, Counter, EltwiseKind, FuncKind, Opcode, PoolKind, Unit

OP_NOP, OP_MVM, OP_REQUANT = int(Opcode.NOP), int(Opcode.MVM), int(Opcode.REQUANT)
OP_ELTWISE, OP_POOL, OP_SOFTMAX = int(Opcode.ELTWISE), int(Opcode.POOL), int(Opcode.SOFTMAX)
OP_COPY, OP_LOAD_W, OP_LOAD_A = int(Opcode.COPY), int(Opcode.LOAD_W), int(Opcode.LOAD_A)
OP_STORE_A, OP_HOST_IN, OP_HOST_OUT = int(Opcode.STORE_A), int(Opcode.HOST_IN), int(Opcode.HOST_OUT)
OP_FUNC = int(Opcode.FUNC)
U_MACRO, U_VECTOR, U_DMA = int(Unit.MACRO), int(Unit.VECTOR), int(Unit.DMA)
A_RELU, A_CLIP, A_LEAKY = int(Act.RELU), int(Act.CLIP), int(Act.LEAKY_RELU)
E_MUL, P_MAX = int(EltwiseKind.MUL), int(PoolKind.MAX)
E_QADD, P_AVG_SCALED, P_AVG_DQ = (
    int(EltwiseKind.QADD),
    int(PoolKind.AVG_SCALED),
    int(PoolKind.AVG_DQ),
)
C = {c.name: int(c) for c in Counter}
C_MACS, C_VEC, C_INCYC = C["MACS"], C["MACRO_VECTORS"], C["MACRO_INPUT_CYCLES"]
C_CELL, C_ROWACT, C_READOUT = (
    C["MACRO_CELL_BIT_OPS"],
    C["MACRO_ROW_ACTIVATIONS"],
    C["READOUT_CONVERSIONS"],
)
C_ACCADD, C_VOPS, C_LUT = C["ACCUMULATOR_ADDS"], C["VECTOR_ELEMENT_OPS"], C["VECTOR_LUT_OPS"]
C_SRAM_R, C_SRAM_W = C["SRAM_READ_BYTES"], C["SRAM_WRITE_BYTES"]
C_EXT_R, C_EXT_W, C_WW = C["EXT_READ_BYTES"], C["EXT_WRITE_BYTES"], C["WEIGHT_WRITE_BYTES"]
C_HOST, C_INSTR = C["HOST_BYTES"], C["INSTRUCTIONS"]
C_MBUSY, C_VBUSY, C_DBUSY = C["MACRO_BUSY_CYCLES"], C["VECTOR_BUSY_CYCLES"], C["DMA_BUSY_CYCLES"]
C_MCOMP, C_VCOMP = C["MACRO_COMPUTE_CYCLES"], C["VECTOR_COMPUTE_CYCLES"]
N_COUNTERS = len(Counter)
_F = DESC_FIELDS
CV, EW, PL, SM, CP = _F["conv"], _F["eltwise"], _F["pool"], _F["softmax"], _F["copy"]
# descriptor columns (numba compiles these ints in)
CP_ACT = CP["act"]
CP_ACT_P0 = CP["act_p0"]
CP_ACT_P1 = CP["act_p1"]
CP_D1 = CP["d1"]
CP_D2 = CP["d2"]
CP_D3 = CP["d3"]
CP_MODE = CP["mode"]
CP_QMAX = CP["qmax"]
CP_QMIN = CP["qmin"]
CP_R = CP["r"]
CP_R2 = CP["r2"]
CP_X_BASE = CP["x_base"]
CP_X_S0 = CP["x_s0"]
CP_X_S1 = CP["x_s1"]
CP_X_S2 = CP["x_s2"]
CP_X_S3 = CP["x_s3"]
CP_Y_BASE = CP["y_base"]
CP_Y_S0 = CP["y_s0"]
CP_Y_S1 = CP["y_s1"]
CP_Y_S2 = CP["y_s2"]
CP_Y_S3 = CP["y_s3"]
CP_ZX = CP["zx"]
CP_ZY = CP["zy"]
EW_A_BASE = EW["a_base"]
EW_A_S0 = EW["a_s0"]
EW_A_S1 = EW["a_s1"]
EW_A_S2 = EW["a_s2"]
EW_A_S3 = EW["a_s3"]
EW_ACT = EW["act"]
EW_ACT_P0 = EW["act_p0"]
EW_ACT_P1 = EW["act_p1"]
EW_B_BASE = EW["b_base"]
EW_B_S0 = EW["b_s0"]
EW_B_S1 = EW["b_s1"]
EW_B_S2 = EW["b_s2"]
EW_B_S3 = EW["b_s3"]
EW_D1 = EW["d1"]
EW_D2 = EW["d2"]
EW_D3 = EW["d3"]
EW_KIND = EW["kind"]
EW_QMAX = EW["qmax"]
EW_QMIN = EW["qmin"]
EW_RA = EW["ra"]
EW_RB = EW["rb"]
EW_RC = EW["rc"]
EW_Y_BASE = EW["y_base"]
EW_Y_S0 = EW["y_s0"]
EW_Y_S1 = EW["y_s1"]
EW_Y_S2 = EW["y_s2"]
EW_Y_S3 = EW["y_s3"]
EW_ZA = EW["za"]
EW_ZB = EW["zb"]
EW_ZY = EW["zy"]
PL_ACT = PL["act"]
PL_ACT_P0 = PL["act_p0"]
PL_ACT_P1 = PL["act_p1"]
PL_COUNT_INCLUDE_PAD = PL["count_include_pad"]
PL_DIL_H = PL["dil_h"]
PL_DIL_W = PL["dil_w"]
PL_H = PL["h"]
PL_IN_BASE = PL["in_base"]
PL_IN_SC = PL["in_sc"]
PL_IN_SX = PL["in_sx"]
PL_IN_SY = PL["in_sy"]
PL_KH = PL["kh"]
PL_KIND = PL["kind"]
PL_KW = PL["kw"]
PL_OH = PL["oh"]
PL_OUT_BASE = PL["out_base"]
PL_OUT_SC = PL["out_sc"]
PL_OUT_SX = PL["out_sx"]
PL_OUT_SY = PL["out_sy"]
PL_OW = PL["ow"]
PL_PAD_LEFT = PL["pad_left"]
PL_PAD_TOP = PL["pad_top"]
PL_QMAX = PL["qmax"]
PL_QMIN = PL["qmin"]
PL_R = PL["r"]
PL_R2 = PL["r2"]
PL_STRIDE_H = PL["stride_h"]
PL_STRIDE_W = PL["stride_w"]
PL_W = PL["w"]
PL_ZX = PL["zx"]
PL_ZY = PL["zy"]
SM_INNER = SM["inner"]
SM_LENGTH = SM["length"]
SM_LUT = SM["lut"]
SM_MODE = SM["mode"]
SM_QMAX = SM["qmax"]
SM_QMIN = SM["qmin"]
SM_SX = SM["sx"]
SM_SY = SM["sy"]
SM_X_BASE = SM["x_base"]
SM_Y_BASE = SM["y_base"]
SM_ZX = SM["zx"]
SM_ZY = SM["zy"]
# conv descriptor columns
CV_IN, CV_SC, CV_SY, CV_SX = CV["in_base"], CV["in_sc"], CV["in_sy"], CV["in_sx"]
CV_CIN, CV_H, CV_W = CV["cin"], CV["h"], CV["w"]
CV_OUT, CV_OSC, CV_OSY, CV_OSX = CV["out_base"], CV["out_sc"], CV["out_sy"], CV["out_sx"]
CV_COUT, CV_OH, CV_OW, CV_KH, CV_KW = CV["cout"], CV["oh"], CV["ow"], CV["kh"], CV["kw"]
CV_STH, CV_STW, CV_DH, CV_DW = CV["stride_h"], CV["stride_w"], CV["dil_h"], CV["dil_w"]
CV_PT, CV_PL, CV_G, CV_WB, CV_AB = (
    CV["pad_top"],
    CV["pad_left"],
    CV["groups"],
    CV["w_base"],
    CV["acc_base"],
)
CV_BB, CV_SB, CV_IZ, CV_OZ = CV["bias_base"], CV["scale_base"], CV["in_zp"], CV["out_zp"]
CV_QMIN, CV_QMAX, CV_ACT, CV_AP0, CV_AP1 = (
    CV["qmin"],
    CV["qmax"],
    CV["act"],
    CV["act_p0"],
    CV["act_p1"],
)
CV_AMIN, CV_AMAX = CV["acc_min"], CV["acc_max"]
# func descriptor columns and kinds (kernels_vector.py)
FN = _F["func"]
FN_KIND, FN_X_BASE, FN_Y_BASE = FN["kind"], FN["x_base"], FN["y_base"]
FN_ZX, FN_ZY, FN_QMIN, FN_QMAX = FN["zx"], FN["zy"], FN["qmin"], FN["qmax"]
FN_SX, FN_RY, FN_P0, FN_P1, FN_P2 = FN["sx"], FN["ry"], FN["p0"], FN["p1"], FN["p2"]
FN_LUT_BASE, FN_LUT_SIZE = FN["lut_base"], FN["lut_size"]
FN_LUT_LO, FN_LUT_INV_STEP = FN["lut_lo"], FN["lut_inv_step"]
F_SIGMOID, F_TANH, F_HSIG = int(FuncKind.SIGMOID), int(FuncKind.TANH), int(FuncKind.HARD_SIGMOID)
F_HSWISH, F_SQRT, F_POW = int(FuncKind.HARD_SWISH), int(FuncKind.SQRT), int(FuncKind.POW)
CV_PMAX, CV_PR = CV["pre_max"], CV["pre_r"]
