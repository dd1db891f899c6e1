"""Spec: torchvision's ResNet-50, DenseNet-121, Inception-v3 and MobileNet-V2 by name, three detector channels
in and one logit out, randomly initialised; each one's parameter count is torchvision's published one less its
1000-class head plus a 1-logit head, its training FLOPs per image three times torchvision's published forward
cost, and one training step moves its weights. A size a model cannot take is refused; --circular-phi wraps
phi in its convolutions. ``python -m bench.strong_scaling --model resnet50 --image-size 224`` records the
FLOPs per image on one rank and on two (mpirun -np 2).

These run in the vision environment (``MULTIJET_VISION=1 ./run.sh test -m vision``) and skip elsewhere
(tests/conftest.py)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import models
from bench import mpijob
from bench.runner.config import Config, UsageError, parse_config
from tests.mpi_env import MPI_ENV

pytestmark = pytest.mark.vision
ROOT = Path(__file__).resolve().parent.parent
NAMES = ("resnet50", "densenet121", "inception_v3", "mobilenet_v2")
# torchvision's IMAGENET1K_V1 weights' metadata: num_params (1000 classes) and _ops (forward GFLOPs at the
# native size, multiply-adds), as the package itself carries them (read in test_published_figures_are_these).
PUBLISHED = {"resnet50": (25_557_032, 4.089), "densenet121": (7_978_856, 2.834),
             "inception_v3": (27_161_264, 5.713), "mobilenet_v2": (3_504_872, 0.301)}
HEAD_INPUTS = {"resnet50": 2048, "densenet121": 1024, "inception_v3": 2048, "mobilenet_v2": 1280}


def test_published_figures_are_these():
    import torchvision.models as tm
    weights = {"resnet50": tm.ResNet50_Weights, "densenet121": tm.DenseNet121_Weights,
               "inception_v3": tm.Inception_V3_Weights, "mobilenet_v2": tm.MobileNet_V2_Weights}
    for name, (params, gflops) in PUBLISHED.items():
        meta = weights[name].IMAGENET1K_V1.meta  # metadata only: nothing is downloaded
        assert (meta["num_params"], meta["_ops"]) == (params, gflops)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_torchvisions_with_one_logit(name):
    published, _ = PUBLISHED[name]
    one_logit = published - 999 * (HEAD_INPUTS[name] + 1)  # 1000 outputs with their biases -> 1
    if name == "inception_v3":  # built without the auxiliary classifier, which the published count includes
        from torchvision.models.inception import InceptionAux
        one_logit -= models.count_parameters(InceptionAux(768, 1000))
    size = models.TORCHVISION_MIN_SIZE[name]
    assert models.count_parameters(models.get_model(name, image_size=size)) == one_logit


@pytest.mark.parametrize("name", NAMES)
def test_training_flops_are_three_forwards_of_the_published_cost(name):
    """Forward and backward of every convolution and matrix product: 3 x 2 x the multiply-adds torchvision
    publishes at the native size, within 2 % (the count leaves out element-wise work; the first layer's
    input gradient is not needed). Depthwise convolutions included (MobileNet-V2): torch's own formula counts
    their weight gradient ``groups`` times (models._conv_backward_flop)."""
    size = {"inception_v3": 299}.get(name, 224)
    flops = models.training_flops_of_config(Config(model=name, image_size=size))
    assert flops / (6e9 * PUBLISHED[name][1]) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("name", NAMES)
def test_output_is_one_logit_per_image_and_one_step_trains(name):
    size = models.TORCHVISION_MIN_SIZE[name]
    torch.manual_seed(0)
    net = models.get_model(name, image_size=size)
    x, y = torch.rand(4, 3, size, size), torch.tensor([0.0, 1.0, 0.0, 1.0])
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    out = net.train()(x)
    assert out.shape == (4,)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out, y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    moved = sum(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert moved == len(before)
    assert net.eval()(x).shape == (4,)


@pytest.mark.parametrize("name", NAMES)
def test_a_size_below_the_minimum_is_refused_naming_the_flag(name):
    least = models.TORCHVISION_MIN_SIZE[name]
    with pytest.raises(UsageError, match=rf"--image-size: {name} takes images of at least {least}x{least}"):
        parse_config(["--model", name, "--image-size", str(least - 1)])
    with pytest.raises(ValueError, match="at least"):
        models.get_model(name, image_size=least - 1)


def test_circular_phi_wraps_every_padded_convolution():
    """A roll of the input by 2k pixels in phi rolls ResNet-50's stride-2 first convolution's output by k
    with --circular-phi (the detector is a cylinder); torchvision's zero padding does not."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32)
    rolled = torch.roll(x, 6, dims=-1)
    for circular, wraps in ((True, True), (False, False)):
        torch.manual_seed(0)
        conv1 = models.get_model("resnet50", image_size=32, circular_phi=circular).net.conv1.eval()
        same = torch.allclose(conv1(rolled), torch.roll(conv1(x), 3, dims=-1), atol=1e-6)
        assert same is wraps
    net = models.get_model("densenet121", image_size=32, circular_phi=True)
    padded = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size[1] > 1]
    assert padded and all(m.padding[1] == 0 and m._forward_pre_hooks for m in padded)
    with pytest.raises(UsageError, match="--circular-phi applies to the torchvision models"):
        parse_config(["--model", "circpad", "--circular-phi"])


RUN = ["--model", "resnet50", "--image-size", "224", "--global-batch", "64", "--epochs", "2",
       "--train-events", "128", "--val-events", "64"]


def check_record(rec, world_size):
    assert rec["model"] == "resnet50" and rec["world_size"] == world_size
    assert rec["model_params"] == 23_510_081
    assert rec["train_flops_per_image"] == pytest.approx(6e9 * 4.089, rel=0.02)
    assert rec["achieved_gflop_s"] == pytest.approx(rec["images_per_s"] * rec["train_flops_per_image"] / 1e9)
    assert rec["env"]["torchvision"] and len(rec["epoch_s"]) == 1


@pytest.mark.slow
def test_resnet50_at_224_trains_and_records_its_flops(tmp_path):
    out = tmp_path / "r.jsonl"
    proc = subprocess.run([sys.executable, "-m", "bench.strong_scaling", *RUN, "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    check_record(rec, 1)


@pytest.mark.mpi
def test_resnet50_at_224_on_two_ranks(tmp_path):
    if shutil.which("mpirun") is None:
        pytest.fail("mpirun not found: the distributed tier needs Open MPI (scripts/setup.sh installs it)")
    out = tmp_path / "r.jsonl"
    proc = mpijob.run(["mpirun", "-np", "2", sys.executable, "-m", "bench.strong_scaling", *RUN,
                           "--backend", "mpi", "--threads", "1", "--out", str(out)], cwd=ROOT, env=MPI_ENV,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    check_record(rec, 2)
    assert rec["backend"] == "mpi" and rec["per_rank_batch"] == 32
