"""What the suite measures: the op table, shapes from real networks, suites.

Adding an op is adding an ``OpSpec`` to ``OPS`` and its shapes to ``SHAPES``;
ops that the installed fastpool does not provide are skipped with a note.
Nothing here imports torch at module level.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

DIRECTIONS = ("fwd", "fwd_idx", "bwd", "train")
DIRECTION_HELP = {
    "fwd": "forward, no indices (inference)",
    "fwd_idx": "forward with return_indices=True",
    "bwd": "backward op alone (grad_output + indices -> grad_input)",
    "train": "training step: forward with grad, then backward",
}
LAYOUTS = ("nchw", "nhwc")  # channels-first / channels-last (NCDHW/NDHWC for 3-D)
DTYPES = ("float32", "bfloat16", "float16", "float64")
PEERS = ("torch", "torch_cl", "onednn", "inductor")
PEER_HELP = {
    "torch": "torch eager, channels-first (NCHW) input",
    "torch_cl": "torch eager, channels_last input",
    "onednn": "oneDNN through torch (mkldnn tensor + torch.max_pool*d); CPU forward, fp32/bf16",
    "inductor": "torch.compile (Inductor) of the same torch call, in the case's layout",
}


@dataclass(frozen=True)
class OpSpec:
    """One pooling op: how to call it in torch and in fastpool."""

    name: str  # name in fastpool and in torch.nn.functional
    spatial: int  # number of spatial dims
    kind: str  # "window" (kernel/stride/padding/dilation/ceil), "adaptive", "fractional" or "unpool"
    backward_op: Optional[str]  # aten / torch.ops.fastpool name of the explicit backward op
    onednn_fn: Optional[str] = None  # torch.<fn> accepting mkldnn tensors (forward only)
    directions: Tuple[str, ...] = DIRECTIONS  # those that apply; the others are left out of a plan

    def applies(self, direction: str) -> bool:
        return direction in self.directions


OPS: Dict[str, OpSpec] = {
    op.name: op
    for op in (
        OpSpec("max_pool2d", 2, "window", "max_pool2d_with_indices_backward", "max_pool2d"),
        OpSpec("max_pool1d", 1, "window", None, None),
        OpSpec("max_pool3d", 3, "window", "max_pool3d_with_indices_backward", "max_pool3d"),
        OpSpec("adaptive_max_pool1d", 1, "adaptive", None, None),
        OpSpec("adaptive_max_pool2d", 2, "adaptive", "adaptive_max_pool2d_backward", None),
        OpSpec("adaptive_max_pool3d", 3, "adaptive", "adaptive_max_pool3d_backward", None),
        OpSpec("fractional_max_pool2d", 2, "fractional", "fractional_max_pool2d_backward", None),
        OpSpec("fractional_max_pool3d", 3, "fractional", "fractional_max_pool3d_backward", None),
        # unpool: its input is a pooled map and its indices (measure.py builds them with torch's
        # max_pool2d); no indices to return and no backward op of its own (autograd's is a gather)
        OpSpec("max_unpool2d", 2, "unpool", None, None, directions=("fwd", "train")),
    )
}


@dataclass(frozen=True)
class Shape:
    """A pooling call taken from a real network.

    For an unpool op ("max_unpool*"), ``shape`` is the map before the encoder's pool, which is
    the unpool's output: the unpool's input is that map pooled with the same kernel/stride/padding.
    """

    name: str
    op: str
    shape: Tuple[int, ...]
    params: Tuple[Tuple[str, object], ...]  # keyword arguments of the torch.nn.functional call
    network: str
    tags: Tuple[str, ...] = ()

    @property
    def kwargs(self) -> dict:
        return dict(self.params)

    def describe_params(self) -> str:
        p = self.kwargs
        if self.op.startswith("max_unpool"):
            s = f"unpool k{_fmt(p['kernel_size'])} s{_fmt(p.get('stride') or p['kernel_size'])}"
            if p.get("padding"):
                s += f" p{_fmt(p['padding'])}"
            return s
        if "output_ratio" in p:
            return f"k{_fmt(p['kernel_size'])} ratio {_fmt(p['output_ratio'])}"
        if "output_size" in p:
            return f"out={p['output_size']}"
        s = f"k{_fmt(p['kernel_size'])} s{_fmt(p.get('stride') or p['kernel_size'])}"
        if p.get("padding"):
            s += f" p{_fmt(p['padding'])}"
        if p.get("dilation", 1) != 1:
            s += f" d{_fmt(p['dilation'])}"
        if p.get("ceil_mode"):
            s += " ceil"
        return s


def _fmt(v) -> str:
    if isinstance(v, (tuple, list)):
        return "x".join(str(i) for i in v) if len(set(v)) > 1 else str(v[0])
    return str(v)


def _w(k, s=None, p=0, d=1, ceil=False):
    return (("kernel_size", k), ("stride", s if s is not None else k), ("padding", p),
            ("dilation", d), ("ceil_mode", ceil))


def _fmp(k, dims=2):
    # output_ratio 1/sqrt(2): the ratio of Graham's FMP nets. The samples are drawn per call (torch.rand),
    # in fastpool as in torch; the bench passes the same ones to both to check the results.
    return (("kernel_size", k), ("output_ratio", (0.7071,) * dims))


def _unpool(k, out, s=None, p=0):
    # output_size as SegNet's decoder passes it (the encoder map's size), so that odd sizes
    # (45 rows at stage 4) come back whole
    return (("kernel_size", k), ("stride", s if s is not None else k), ("padding", p), ("output_size", tuple(out)))


def _S(name, op, shape, params, network, *tags):
    return Shape(name, op, tuple(shape), params, network, tuple(tags))


SHAPES: List[Shape] = [
    # --- headline cases (issue 2) ---
    _S("resnet50.stem", "max_pool2d", (32, 64, 112, 112), _w(3, 2, 1), "ResNet-50 stem, batch 32", "headline"),
    _S("vgg16.pool2@112px", "max_pool2d", (32, 128, 56, 56), _w(2, 2), "VGG-16 pool2 on 112px images, batch 32",
       "headline"),
    # --- VGG-16's five pools, 224px, batch 8 ---
    _S("vgg16.pool1", "max_pool2d", (8, 64, 224, 224), _w(2, 2), "VGG-16, batch 8", "network"),
    _S("vgg16.pool2", "max_pool2d", (8, 128, 112, 112), _w(2, 2), "VGG-16, batch 8", "network"),
    _S("vgg16.pool3", "max_pool2d", (8, 256, 56, 56), _w(2, 2), "VGG-16, batch 8", "network"),
    _S("vgg16.pool4", "max_pool2d", (8, 512, 28, 28), _w(2, 2), "VGG-16, batch 8", "network"),
    _S("vgg16.pool5", "max_pool2d", (8, 512, 14, 14), _w(2, 2), "VGG-16, batch 8", "network"),
    # --- U-Net encoder (Ronneberger et al. 2015, 572px input, valid convs, batch 1) ---
    _S("unet.pool1", "max_pool2d", (1, 64, 568, 568), _w(2, 2), "U-Net encoder, batch 1", "network"),
    _S("unet.pool2", "max_pool2d", (1, 128, 280, 280), _w(2, 2), "U-Net encoder, batch 1", "network"),
    _S("unet.pool3", "max_pool2d", (1, 256, 136, 136), _w(2, 2), "U-Net encoder, batch 1", "network"),
    _S("unet.pool4", "max_pool2d", (1, 512, 64, 64), _w(2, 2), "U-Net encoder, batch 1", "network"),
    # --- Inception v1 (GoogLeNet, torchvision) ceil_mode pools, batch 16 ---
    _S("googlenet.pool1", "max_pool2d", (16, 64, 112, 112), _w(3, 2, 0, 1, True), "GoogLeNet (Inception v1), batch 16",
       "network"),
    _S("googlenet.pool2", "max_pool2d", (16, 192, 56, 56), _w(3, 2, 0, 1, True), "GoogLeNet (Inception v1), batch 16",
       "network"),
    _S("googlenet.pool3", "max_pool2d", (16, 480, 28, 28), _w(3, 2, 0, 1, True), "GoogLeNet (Inception v1), batch 16",
       "network"),
    _S("googlenet.pool4", "max_pool2d", (16, 832, 14, 14), _w(2, 2, 0, 1, True), "GoogLeNet (Inception v1), batch 16",
       "network"),
    _S("googlenet.3a.branch4", "max_pool2d", (16, 192, 28, 28), _w(3, 1, 1, 1, True),
       "GoogLeNet inception3a pool branch (k3 s1 p1 ceil), batch 16", "network"),
    # --- YOLOv5/v8 SPPF: three k5 s1 p2 pools in a row over the 20x20 map of a
    #     640px input (256 channels after the block's first conv, the "s" model), batch 16 ---
    _S("yolov5s.sppf", "max_pool2d", (16, 256, 20, 20), _w(5, 1, 2), "YOLOv5s SPPF (k5 s1 p2, three in a row), batch 16",
       "network"),
    # --- global max pooling ---
    _S("global.resnet50.k7", "max_pool2d", (32, 2048, 7, 7), _w(7, 7), "global max pool over ResNet-50's last map",
       "network"),
    _S("global.resnet50", "adaptive_max_pool2d", (32, 2048, 7, 7), (("output_size", 1),),
       "global max pool (adaptive, out=1) over ResNet-50's last map", "network"),
    # --- spatial pyramid pooling (He et al. 2014): 1x1, 2x2, 4x4 bins over conv5
    #     of a 13x13 map; 2 and 4 do not divide 13, so the windows vary and overlap ---
    _S("spp.conv5.bins1", "adaptive_max_pool2d", (16, 256, 13, 13), (("output_size", 1),),
       "spatial pyramid pooling, 1x1 bin, batch 16", "network"),
    _S("spp.conv5.bins2", "adaptive_max_pool2d", (16, 256, 13, 13), (("output_size", 2),),
       "spatial pyramid pooling, 2x2 bins, batch 16", "network"),
    _S("spp.conv5.bins4", "adaptive_max_pool2d", (16, 256, 13, 13), (("output_size", 4),),
       "spatial pyramid pooling, 4x4 bins, batch 16", "network"),
    _S("audio.global", "adaptive_max_pool1d", (32, 512, 31), (("output_size", 1),),
       "global max pool over an audio CNN's last map, batch 32", "network"),
    # --- 3-D U-Net (Cicek et al. 2016), first pool, 64^3 crop, batch 1 ---
    _S("unet3d.pool1", "max_pool3d", (1, 64, 64, 64, 64), _w(2, 2), "3-D U-Net first pool (64^3 crop)", "network"),
    _S("unet3d.pool2", "max_pool3d", (1, 128, 32, 32, 32), _w(2, 2), "3-D U-Net second pool (64^3 crop)", "network"),
    _S("global3d.unet3d", "adaptive_max_pool3d", (1, 256, 16, 16, 16), (("output_size", 1),),
       "global max pool over a 3-D feature map", "network"),
    # --- 1-D audio (M5 raw-waveform CNN, Dai et al. 2017; MaxPool1d(4)) ---
    _S("audio.m5.pool1", "max_pool1d", (32, 128, 1996), _w(4, 4), "M5 raw-audio CNN, batch 32", "network"),
    _S("audio.m5.pool2", "max_pool1d", (32, 128, 498), _w(4, 4), "M5 raw-audio CNN, batch 32", "network"),
    # --- fractional max pooling as Graham's FMP nets use it (arXiv:1412.6071): a 2x2 pool with
    #     output ratio 1/sqrt(2) after every conv, many layers, 32n channels at layer n here ---
    _S("fmp.layer1", "fractional_max_pool2d", (8, 32, 94, 94), _fmp(2), "Graham FMP net, layer 1, batch 8",
       "network"),
    _S("fmp.layer4", "fractional_max_pool2d", (8, 128, 33, 33), _fmp(2), "Graham FMP net, layer 4, batch 8",
       "network"),
    _S("fmp.layer8", "fractional_max_pool2d", (8, 256, 11, 11), _fmp(2), "Graham FMP net, layer 8, batch 8",
       "network"),
    _S("fmp3d.layer1", "fractional_max_pool3d", (2, 32, 32, 32, 32), _fmp(2, 3), "3-D FMP, 32^3 volume, batch 2",
       "network"),
]

# SegNet (Badrinarayanan et al. 2017): a VGG-16 encoder whose five 2x2 pools keep their indices, and a
# decoder that unpools with them. At its 360x480 CamVid input the encoder's stages end in these maps
# (before each pool), which are the decoder unpools' outputs; the unpools' inputs are those maps pooled.
# Batch 4 (the full suite); the default suite takes stages 2 and 4 at batch 1, where one unpool takes
# 1-40 ms on 2 cores (stage 2 at batch 4: 40-500 ms a call, peers included).
SEGNET_STAGES = [(1, (64, 360, 480)), (2, (128, 180, 240)), (3, (256, 90, 120)), (4, (512, 45, 60)),
                 (5, (512, 22, 30))]


def _segnet(stage, batch, *tags):
    c, h, w = dict(SEGNET_STAGES)[stage]
    name = f"segnet.unpool{stage}" + ("" if batch == 4 else f".b{batch}")
    return _S(name, "max_unpool2d", (batch, c, h, w), _unpool(2, (h, w)),
              f"SegNet decoder unpool of VGG-16 stage {stage} ({h // 2}x{w // 2} -> {h}x{w}), 360x480 input, "
              f"batch {batch}", "segnet", *tags)


SHAPES += [_segnet(i, 4) for i, _ in SEGNET_STAGES] + [_segnet(2, 1, "default"), _segnet(4, 1, "default")]

# Size sweep: ResNet-stem pooling (k3 s2 p1, 64 channels) from cache-resident
# to DRAM-sized. The machine's L3 is reported by lscpu; working sets above it
# are DRAM-bound. "dram" points are only in the full suite by default.
SWEEP_SIZES = [
    ((1, 64, 16, 16), ()),
    ((1, 64, 32, 32), ()),
    ((1, 64, 64, 64), ()),
    ((1, 64, 112, 112), ()),
    ((4, 64, 112, 112), ()),
    ((16, 64, 112, 112), ()),
    ((64, 64, 112, 112), ()),
    ((160, 64, 112, 112), ()),  # ~0.5 GB in + 0.13 GB out: beyond a 480 MB L3
    ((256, 64, 112, 112), ("full",)),  # ~0.8 GB in
]


# Per-call cost: a map so small that the pooling itself takes well under a
# microsecond, so the time is the call's own cost (argument handling, dispatch,
# allocation, autograd), as in late layers at batch 1.
CALL_SHAPES = [_S("call.1x8x8x8", "max_pool2d", (1, 8, 8, 8), _w(2, 2), "per-call cost, 2 KiB input", "calls")]


def sweep_shapes(full: bool) -> List[Shape]:
    out = []
    for shape, tags in SWEEP_SIZES:
        if "full" in tags and not full:
            continue
        mb = 4 * _prod(shape) / 2**20
        out.append(_S(f"sweep.{'x'.join(map(str, shape))}", "max_pool2d", shape, _w(3, 2, 1),
                      f"ResNet-stem pool, {mb:.3g} MiB fp32 input", "sweep"))
    return out


def _prod(xs):
    r = 1
    for x in xs:
        r *= x
    return r


@dataclass
class Group:
    """A block of cases: shapes crossed with dtypes x layouts x directions, with these peers."""

    name: str
    shapes: Sequence[Shape]
    dtypes: Sequence[str]
    layouts: Sequence[str]
    directions: Sequence[str]
    peers: Sequence[str]
    min_run_time: Optional[float] = None  # seconds per blocked_autorange; None: the suite's
    repeats: Optional[int] = None  # interleaved rounds per case; None: the suite's


@dataclass
class Suite:
    name: str
    groups: List[Group]
    repeats: int = 2  # interleaved rounds per case
    min_run_time: float = 0.2
    e2e: Optional[dict] = None  # end-to-end config (see e2e.py) or None
    description: str = ""
    extra: dict = field(default_factory=dict)


def _shapes(tag=None, names=None, also=None) -> List[Shape]:
    out = []
    for s in SHAPES:
        if (tag is None or tag in s.tags) and (names is None or s.name in names) and (also is None or also in s.tags):
            out.append(s)
    return out


def build_suite(name: str) -> Suite:
    headline = _shapes("headline")
    network = _shapes("network")
    segnet = _shapes("segnet")
    if name == "smoke":
        tiny = [_S("smoke.tiny", "max_pool2d", (2, 8, 12, 12), _w(3, 2, 1), "tiny smoke case")]
        tiny_unpool = [_S("smoke.unpool", "max_unpool2d", (2, 8, 13, 10), _unpool(2, (13, 10)),
                          "tiny smoke case, unpool")]
        return Suite(
            "smoke",
            [Group("smoke", tiny, ["float32"], ["nchw", "nhwc"], list(DIRECTIONS), ["torch", "torch_cl", "onednn"]),
             Group("smoke", tiny_unpool, ["float32"], ["nchw", "nhwc"], list(DIRECTIONS),
                   ["torch", "torch_cl", "onednn"])],
            repeats=2, min_run_time=0.002,
            e2e=dict(batch=2, resolution=64, layouts=["nchw"], dtypes=["float32"], width=8, min_run_time=0.002,
                     memory_probe=False),
            description="a few-second structural check (used by tests/test_bench.py)")
    if name == "quick":
        return Suite(
            "quick",
            [Group("headline", headline, ["float32"], list(LAYOUTS), ["fwd", "bwd"], ["torch", "torch_cl", "onednn"])],
            repeats=2, min_run_time=0.1, e2e=None,
            description="the two headline shapes, fp32, forward and backward (about a minute)")
    if name == "default":
        return Suite(
            "default",
            [
                Group("headline", headline, ["float32"], list(LAYOUTS), list(DIRECTIONS),
                      ["torch", "torch_cl", "onednn", "inductor"]),
                Group("headline", headline, ["bfloat16"], list(LAYOUTS), list(DIRECTIONS),
                      ["torch", "torch_cl", "onednn"]),
                # the training step too: what a model's pool costs in training (issue 8's 2x target;
                # Graham's FMP layers' is issue 9's)
                Group("networks", network, ["float32"], list(LAYOUTS), ["fwd", "bwd", "train"],
                      ["torch", "torch_cl", "onednn"], min_run_time=0.05),
                # SegNet's decoder unpools, stages 2 and 4 at batch 1, both layouts, fp32 and bf16, torch
                # eager peers, Inductor in fp32 (as the headline group; the full suite has it in bf16 too).
                # Unpool directions are fwd and train. About 50 s on 2 shared cores.
                Group("segnet", _shapes("segnet", also="default"), ["float32"], list(LAYOUTS),
                      ["fwd", "train"], ["torch", "torch_cl", "inductor"], min_run_time=0.05),
                Group("segnet", _shapes("segnet", also="default"), ["bfloat16"], list(LAYOUTS),
                      ["fwd", "train"], ["torch", "torch_cl"], min_run_time=0.05),
                # Per-call costs of a few microseconds: many short rounds, whose median a
                # disturbed round or two cannot move (3 rounds of 0.05 s spread by 50-60%).
                Group("calls", CALL_SHAPES, ["float32"], ["nchw"], ["fwd", "fwd_idx", "train"], ["torch"],
                      min_run_time=0.01, repeats=15),
                Group("calls", CALL_SHAPES, ["float32"], ["nhwc"], ["fwd", "fwd_idx", "train"], ["torch_cl"],
                      min_run_time=0.01, repeats=15),
                # the sweep compares each layout with torch in the same layout only (torch NCHW on the
                # DRAM-sized point alone takes seconds a call)
                Group("sweep", sweep_shapes(full=False), ["float32"], ["nchw"], ["fwd"], ["torch"], min_run_time=0.05),
                Group("sweep", sweep_shapes(full=False), ["float32"], ["nhwc"], ["fwd"], ["torch_cl"],
                      min_run_time=0.05),
            ],
            # three rounds, so that the median survives one disturbed round (seen here: a first
            # round 7x slower than the next while the machine settled after torch.compile)
            repeats=3, min_run_time=0.15,
            e2e=dict(batch=8, resolution=224, layouts=["nchw", "nhwc"], dtypes=["float32"], width=64,
                     min_run_time=0.5, memory_probe=True),
            description="headline shapes in every dtype/layout/direction (Inductor peer in fp32), network shapes "
                        "fp32 forward, backward and training step, SegNet unpools (stages 2 "
                        "and 4, batch 1) fp32+bf16, size sweep, end-to-end ResNet-style net (a few minutes on 2 "
                        "cores)")
    if name == "full":
        return Suite(
            "full",
            [
                Group("headline", headline, ["float32", "bfloat16"], list(LAYOUTS), list(DIRECTIONS),
                      list(PEERS)),
                Group("networks", network, ["float32", "bfloat16"], list(LAYOUTS), list(DIRECTIONS), list(PEERS),
                      min_run_time=0.1),
                Group("segnet", segnet, ["float32", "bfloat16"], list(LAYOUTS), list(DIRECTIONS), list(PEERS),
                      min_run_time=0.1),
                Group("sweep", sweep_shapes(full=True), ["float32"], list(LAYOUTS), ["fwd", "bwd"],
                      ["torch", "torch_cl", "onednn"], min_run_time=0.2),
            ],
            repeats=3, min_run_time=0.3,
            e2e=dict(batch=8, resolution=224, layouts=["nchw", "nhwc"], dtypes=["float32", "bfloat16"], width=64,
                     min_run_time=2.0, memory_probe=True),
            description="everything, every peer (torch.compile makes this long on 2 cores)")
    raise ValueError(f"unknown suite {name!r}; choose from {SUITES}")


SUITES = ("smoke", "quick", "default", "full")
