"""fastpool.convert / unconvert on networks built here: the swap is in place,
keeps every argument, and outputs and gradients stay bit-identical."""
import copy
import io

import pytest
import torch

import fastpool

nn = torch.nn


def resnet_like():
    return nn.Sequential(
        nn.Conv2d(3, 8, 7, stride=2, padding=3), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        nn.AdaptiveMaxPool2d((1, 1)), nn.Flatten(), nn.Linear(16, 10))


def vgg_like():
    layers = []
    for c_in, c_out in [(3, 8), (8, 16), (16, 16)]:
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
    return nn.Sequential(*layers, nn.AdaptiveMaxPool2d((3, 2)), nn.Flatten(), nn.Linear(16 * 6, 10))


def audio_1d():
    return nn.Sequential(
        nn.Conv1d(1, 8, 9, stride=2), nn.ReLU(), nn.MaxPool1d(4, stride=3, dilation=2),
        nn.Conv1d(8, 8, 5), nn.ReLU(), nn.AdaptiveMaxPool1d(5), nn.Flatten(), nn.Linear(40, 4))


def unet_3d():
    return nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2),
        nn.Conv3d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool3d((1, 2, 2), padding=(0, 1, 1)),
        nn.AdaptiveMaxPool3d((2, 1, None)), nn.Flatten(), nn.LazyLinear(3))


NETS = {"resnet_like": (resnet_like, (2, 3, 32, 32)), "vgg_like": (vgg_like, (2, 3, 27, 21)),
        "audio_1d": (audio_1d, (3, 1, 400)), "unet_3d": (unet_3d, (2, 1, 8, 12, 10))}
POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


def run(model, x):
    x = x.clone().requires_grad_()
    out = model(x)
    out.square().sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    return out.detach(), x.grad, grads


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_convert_keeps_outputs_and_gradients(name, channels_last):
    build, shape = NETS[name]
    torch.manual_seed(0)
    model = build().double()
    x = torch.randn(shape, dtype=torch.float64)
    if channels_last and x.dim() in (4, 5):
        x = x.contiguous(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
    reference = run(model, x)  # also materialises lazy layers
    pools_before = {n: (type(m), m.extra_repr()) for n, m in model.named_modules() if isinstance(m, POOLS)}
    ids_before = {n: id(m) for n, m in model.named_modules()}
    assert pools_before, "the network has pooling to swap"

    assert fastpool.convert(model) is model
    for n, m in model.named_modules():
        assert id(m) == ids_before[n]  # in place: the same module objects
        if n in pools_before:
            assert type(m).__module__ == "fastpool.modules"
            assert isinstance(m, pools_before[n][0]) and m.extra_repr() == pools_before[n][1]
    converted = run(model, x)
    torch.testing.assert_close(converted[0], reference[0], rtol=0, atol=0)
    torch.testing.assert_close(converted[1], reference[1], rtol=0, atol=0)
    for a, b in zip(converted[2], reference[2]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    assert fastpool.unconvert(model) is model
    assert {n: (type(m), m.extra_repr()) for n, m in model.named_modules() if isinstance(m, POOLS)} == pools_before


def test_convert_leaves_subclasses_and_other_modules_alone():
    class MyPool(nn.MaxPool2d):
        def forward(self, x):
            return super().forward(x) * 2

    model = nn.Sequential(MyPool(2), nn.ReLU(), nn.MaxPool2d(2))
    fastpool.convert(model)
    assert type(model[0]) is MyPool and type(model[1]) is nn.ReLU and type(model[2]) is fastpool.MaxPool2d
    pool = nn.MaxPool3d(2)
    assert fastpool.convert(pool) is pool and type(pool) is fastpool.MaxPool3d  # the model itself
    copied = copy.deepcopy(model)
    assert type(copied[2]) is fastpool.MaxPool2d
    buffer = io.BytesIO()
    torch.save(fastpool.convert(nn.Sequential(nn.MaxPool1d(2), nn.AdaptiveMaxPool2d(1))), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)  # a whole module, classes found by name
    assert [type(m) for m in loaded] == [fastpool.MaxPool1d, fastpool.AdaptiveMaxPool2d]
    with pytest.raises(TypeError):
        fastpool.convert("not a model")
