"""Layer tables of the published points' networks: each weighted layer's parameter tensors and multiply-adds.

Pure Python (no torch): the projection's overlap timeline (bench/projection/timeline.py) needs, for each
gradient tensor, when backward produces it, and the parameter-server model needs how TensorFlow places whole
variables on its PS tasks. Both follow from the layer shapes, which the papers give:

    vgg16       Simonyan & Zisserman 2015, Table 1, configuration D: 13 3x3 convolutions and 3 dense layers;
                138,357,544 parameters (Table 2: 138 M), 15.5e9 multiply-adds at 224x224
    resnet50    He et al. 2016, Table 1: bottleneck blocks [3, 4, 6, 3]; 25,557,032 parameters,
    resnet101   [3, 4, 23, 3]; 44,549,160 parameters (the stride on the 3x3 convolution as torchvision puts
                it: 4.1e9 and 7.8e9 multiply-adds; tf_cnn_benchmarks puts it on the first 1x1, the same
                tensors at fewer multiply-adds); BatchNorm scale and shift as torchvision's (tensor sizes,
                not TensorFlow's variable list), the projection shortcut created first as in tf_cnn_benchmarks
    resnet152   [3, 8, 36, 3]; 60,192,808 parameters, 11.5e9 multiply-adds (torchvision: 60,192,808 and 11.51e9)
    inception-v3  Szegedy et al. 2016 (arXiv:1512.00567), as tf_cnn_benchmarks' ``Inceptionv3Model`` builds it
                (the code behind every published Inception V3 point here): 299x299, modules A x 3, B, C x 4,
                D, E x 2, no auxiliary head, batch_norm without scale, 1001 classes; 23,819,401 trainable
                parameters (torchvision's 27,161,264 less its 3,326,696-parameter auxiliary head, less the 17,216
                BatchNorm scales, plus the 2,049 of the 1001st class), 5.7e9 multiply-adds

``Layer.tensors`` lists a layer's parameter tensors (weight, then bias or the BatchNorm scale and shift) with
their element counts; ``macs`` is its forward multiply-adds per image. A training step costs 3 x 2 x macs
FLOPs per image (forward 2 macs; backward 4 macs: the input gradient and the weight gradient).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    name: str
    tensors: tuple  # element counts of its parameter tensors, creation order
    macs: float  # forward multiply-adds per image
    state: tuple = ()  # element counts of its variables that get no gradient (BatchNorm moving statistics)

    @property
    def params(self) -> int:
        return sum(self.tensors)


def _conv(name: str, cin: int, cout: int, k: int, out_hw: int, bias: bool = False, bn: bool = True) -> Layer:
    tensors = (k * k * cin * cout,) + ((cout,) if bias else ()) + ((cout, cout) if bn else ())
    return Layer(name, tensors, float(k * k * cin * cout * out_hw * out_hw))


def _conv_tf(name: str, cin: int, cout: int, kh: int, kw: int, out_hw: int) -> Layer:
    """A kh x kw convolution without bias, then TensorFlow's batch_norm as tf_cnn_benchmarks calls it (no scale:
    a shift beta, and the moving mean and variance, which get no gradient), on a square out_hw map."""
    return Layer(name, (kh * kw * cin * cout, cout), float(kh * kw * cin * cout * out_hw * out_hw), (cout, cout))


def _dense(name: str, fin: int, fout: int) -> Layer:
    return Layer(name, (fin * fout, fout), float(fin * fout))


def vgg16(classes: int = 1000) -> list[Layer]:
    """VGG-16 (configuration D) at 224x224, forward order."""
    layers, cin, hw = [], 3, 224
    for stage, (width, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), start=1):
        for i in range(convs):
            layers.append(_conv(f"conv{stage}_{i + 1}", cin, width, 3, hw, bias=True, bn=False))
            cin = width
        hw //= 2
    return layers + [_dense("fc6", 512 * 7 * 7, 4096), _dense("fc7", 4096, 4096), _dense("fc8", 4096, classes)]


def resnet(depth: int, classes: int = 1000) -> list[Layer]:
    """ResNet-50, -101 or -152 (bottleneck blocks, stride on the 3x3) at 224x224, forward order."""
    blocks = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}[depth]
    layers = [_conv("conv1", 3, 64, 7, 112)]
    cin, hw = 64, 56
    for stage, (width, count) in enumerate(zip((64, 128, 256, 512), blocks), start=2):
        for b in range(count):
            stride = 2 if (b == 0 and stage > 2) else 1
            out_hw = hw // stride
            name = f"conv{stage}_{b + 1}"
            if b == 0:  # the projection shortcut is created first (tf_cnn_benchmarks' resnet_bottleneck_v1)
                layers.append(_conv(f"{name}_proj", cin, 4 * width, 1, out_hw))
            layers += [_conv(f"{name}a", cin, width, 1, hw), _conv(f"{name}b", width, width, 3, out_hw),
                       _conv(f"{name}c", width, 4 * width, 1, out_hw)]
            cin, hw = 4 * width, out_hw
    return layers + [_dense("fc", cin, classes)]


def inception_v3(classes: int = 1001) -> list[Layer]:
    """Inception V3 at 299x299, forward order, each module's branches in the order tf_cnn_benchmarks creates
    their variables (which is the order TensorFlow places them on parameter servers)."""
    layers = [_conv_tf("conv0", 3, 32, 3, 3, 149), _conv_tf("conv1", 32, 32, 3, 3, 147),
              _conv_tf("conv2", 32, 64, 3, 3, 147), _conv_tf("conv3", 64, 80, 1, 1, 73),
              _conv_tf("conv4", 80, 192, 3, 3, 71)]

    def block(name, cin, hw, convs):  # convs: (cout, kh, kw, out_hw) in creation order, cin chained per branch
        out = []
        for b, branch in enumerate(convs):
            c = cin
            for i, (cout, kh, kw, ohw) in enumerate(branch):
                out.append(_conv_tf(f"{name}_b{b}_{i}", c, cout, kh, kw, ohw))
                c = cout
        return out

    cin = 192
    for m, pool in enumerate((32, 64, 64)):  # A at 35x35
        layers += block(f"mixed5{'bcd'[m]}", cin, 35, [[(64, 1, 1, 35)], [(48, 1, 1, 35), (64, 5, 5, 35)],
                                                     [(64, 1, 1, 35), (96, 3, 3, 35), (96, 3, 3, 35)],
                                                     [(pool, 1, 1, 35)]])
        cin = 64 + 64 + 96 + pool
    layers += block("mixed6a", cin, 35, [[(384, 3, 3, 17)], [(64, 1, 1, 35), (96, 3, 3, 35), (96, 3, 3, 17)]])
    cin = 384 + 96 + cin
    for m, n in enumerate((128, 160, 160, 192)):  # C at 17x17
        layers += block(f"mixed6{'bcde'[m]}", cin, 17, [
            [(192, 1, 1, 17)], [(n, 1, 1, 17), (n, 1, 7, 17), (192, 7, 1, 17)],
            [(n, 1, 1, 17), (n, 7, 1, 17), (n, 1, 7, 17), (n, 7, 1, 17), (192, 1, 7, 17)], [(192, 1, 1, 17)]])
        cin = 768
    layers += block("mixed7a", cin, 17, [[(192, 1, 1, 17), (320, 3, 3, 8)],
                                         [(192, 1, 1, 17), (192, 1, 7, 17), (192, 7, 1, 17), (192, 3, 3, 8)]])
    cin = 320 + 192 + cin
    for m in range(2):  # E at 8x8: the 1x3 and 3x1 convolutions share their branch's input
        name = f"mixed7{'bc'[m]}"
        layers += [_conv_tf(f"{name}_b0", cin, 320, 1, 1, 8), _conv_tf(f"{name}_b1_0", cin, 384, 1, 1, 8),
                   _conv_tf(f"{name}_b1_1x3", 384, 384, 1, 3, 8), _conv_tf(f"{name}_b1_3x1", 384, 384, 3, 1, 8),
                   _conv_tf(f"{name}_b2_0", cin, 448, 1, 1, 8), _conv_tf(f"{name}_b2_1", 448, 384, 3, 3, 8),
                   _conv_tf(f"{name}_b2_1x3", 384, 384, 1, 3, 8), _conv_tf(f"{name}_b2_3x1", 384, 384, 3, 1, 8),
                   _conv_tf(f"{name}_b3", cin, 192, 1, 1, 8)]
        cin = 320 + 768 + 768 + 192
    return layers + [_dense("fc", cin, classes)]


def circpad(image_size: int = 64, channels: int = 3) -> list[Layer]:
    """The study's circular-padding CNN (models/circpad.py): four 3x3 convolutions (64, 128, 256, 256 wide,
    with bias and BatchNorm; the first three each followed by a 2x2 max-pool), a 512-wide dense layer and one
    output, forward order."""
    layers, cin, hw = [], channels, image_size
    for i, width in enumerate((64, 128, 256, 256)):
        layers.append(_conv(f"conv{i + 1}", cin, width, 3, hw, bias=True))
        cin, hw = width, (hw // 2 if i < 3 else hw)
    return layers + [_dense("dense1", cin * hw * hw, 512), _dense("dense2", 512, 1)]


NETWORKS = {"vgg16": vgg16, "circpad-64": lambda: circpad(64), "circpad-224": lambda: circpad(224),
            "resnet50": lambda: resnet(50), "resnet101": lambda: resnet(101), "resnet152": lambda: resnet(152),
            "inception-v3": inception_v3}


@functools.cache
def _table(name: str) -> tuple[Layer, ...]:
    return tuple(NETWORKS[name]())


def table(name: str) -> list[Layer]:
    """The layer table of a workload in ``NETWORKS``; KeyError for another."""
    return list(_table(name))


def totals(layers: list[Layer]) -> tuple[int, float]:
    """(parameters, forward multiply-adds per image)."""
    return sum(la.params for la in layers), sum(la.macs for la in layers)


@functools.cache
def variables(name: str) -> tuple[tuple[int, bool], ...]:
    """Every variable of a network of ``NETWORKS`` in creation order, as (element count, trainable): each
    layer's parameter tensors, then its state (the order TensorFlow creates, and places, them). Computed once."""
    return tuple(v for la in _table(name) for v in [(n, True) for n in la.tensors] + [(n, False) for n in la.state])


def backward_order(name: str) -> tuple[list[int], list[float]]:
    """Gradient tensors in the order backward produces them (last layer first) and each one's share of the
    backward FLOPs spent before it is ready, as (element counts, backward FLOPs per image attributed to the
    tensor): a layer's tensors are ready together when its backward (4 x macs) ends, so its FLOPs go with its
    first tensor and the others get 0. ``name``: a network of ``NETWORKS`` (computed once)."""
    counts, flops = _backward_order(name)
    return list(counts), list(flops)


@functools.cache
def _backward_order(name: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    counts, flops = [], []
    for la in reversed(_table(name)):
        for i, n in enumerate(la.tensors):
            counts.append(n)
            flops.append(4.0 * la.macs if i == 0 else 0.0)
    return tuple(counts), tuple(flops)
