"""Whole-network inference with ferroconv: ResNet-18 and MobileNetV2 (224x224).

Each network is built in PyTorch (random weights, BatchNorm statistics drawn at
random so folding them matters), put in eval mode, and run three ways on the same
input with the same thread count:

* ferroconv: the convolutions through ``ferroconv.functional`` with the
  BatchNorm folded into their weights and bias and the residual add and
  activation as their fused epilogue (``activation=``, ``residual=``,
  ``out=``), pooling through ferroconv, the classifier in NumPy;
* PyTorch eager (``torch.inference_mode``);
* ONNX Runtime (CPU provider, the same intra-op thread count) on the model
  exported with ``torch.onnx.export``, when ``onnxruntime`` is installed.

The logits are compared with PyTorch's (max |difference| <= 1e-4 x max |logit|,
same argmax) before anything is timed. Run::

    pip install ".[examples]" torch onnx onnxruntime
    python examples/network_inference.py --threads 2 --batch 1 8
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import warnings
from typing import Any, Callable, Optional

import numpy as np

import ferroconv as fc

# ----------------------------------------------------------- the networks (torch)


def torch_resnet18(torch: Any) -> Any:
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.down = None
            if stride != 1 or c_in != c_out:
                self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

        def forward(self, x: Any) -> Any:
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    c_in = 64
    for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(c_in, width, stride), Block(width, width, 1)]
        c_in = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000)]
    return nn.Sequential(*layers)


def torch_mobilenet_v2(torch: Any) -> Any:
    nn = torch.nn

    def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> list[Any]:
        out = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
        return out + [nn.ReLU6()] if act else out

    class Inverted(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int, expansion: int):
            super().__init__()
            hidden = c_in * expansion
            layers = conv_bn(c_in, hidden, 1) if expansion != 1 else []
            layers += conv_bn(hidden, hidden, 3, stride, groups=hidden) + conv_bn(hidden, c_out, 1, act=False)
            self.body = nn.Sequential(*layers)
            self.residual = stride == 1 and c_in == c_out

        def forward(self, x: Any) -> Any:
            return x + self.body(x) if self.residual else self.body(x)

    layers = conv_bn(3, 32, 3, 2)
    c_in = 32
    for expansion, c, n, stride in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                                    (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            layers.append(Inverted(c_in, c, stride if i == 0 else 1, expansion))
            c_in = c
    layers += conv_bn(c_in, 1280, 1) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1280, 1000)]
    return nn.Sequential(*layers)


def randomise_batchnorm(torch: Any, model: Any, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and affine parameters (random init leaves
    them at the identity, which would make folding untested)."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
            m.weight.data.copy_(0.5 + torch.rand(c, generator=gen))
            m.bias.data.copy_(0.1 * torch.randn(c, generator=gen))


# ------------------------------------------------- the same networks in ferroconv


class Conv:
    """A convolution with its BatchNorm folded in: ``y = conv(x, w') + b'``."""

    def __init__(self, conv: Any, bn: Any):
        w = conv.weight.detach().double().numpy()
        scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach().double().numpy()
        shift = bn.bias.detach().double().numpy() - bn.running_mean.double().numpy() * scale
        self.weight = (w * scale[:, None, None, None]).astype(np.float32)
        self.bias = shift.astype(np.float32)
        self.stride, self.padding, self.groups = conv.stride[0], conv.padding[0], conv.groups

    def __call__(self, x: np.ndarray, activation: Optional[str] = None,
                 residual: Optional[np.ndarray] = None) -> np.ndarray:
        # The bias, the residual add and the activation are the convolution's
        # fused epilogue; with out=residual the block's result overwrites its
        # shortcut instead of allocating a new array.
        return fc.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                         groups=self.groups, activation=activation, residual=residual, out=residual)


def ferroconv_model(torch: Any, model: Any, kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """The eval-mode ``model`` as a NumPy function over ferroconv."""
    mods = list(model.children())
    linear = mods[-1]
    fc_w = linear.weight.detach().numpy().T.copy()
    fc_b = linear.bias.detach().numpy().copy()

    def head(x: np.ndarray) -> np.ndarray:
        # einsum, not `@`: NumPy's matmul runs on OpenBLAS, whose threads keep
        # spinning on every core for a while after a call and would slow the
        # next image's convolutions several-fold. (In your own loops, limit
        # BLAS to one thread with threadpoolctl or OPENBLAS_NUM_THREADS=1.)
        return np.einsum("nc,ck->nk", fc.global_avg_pool(x).reshape(x.shape[0], -1), fc_w) + fc_b

    if kind == "resnet18":
        stem = Conv(mods[0], mods[1])
        blocks = []
        for block in mods[4:12]:
            down = Conv(block.down[0], block.down[1]) if block.down is not None else None
            blocks.append((Conv(block.conv1, block.bn1), Conv(block.conv2, block.bn2), down))

        def resnet(x: np.ndarray) -> np.ndarray:
            x = fc.max_pool2d(stem(x, "relu"), 3, 2, 1)
            for conv1, conv2, down in blocks:
                shortcut = x if down is None else down(x)
                x = conv2(conv1(x, "relu"), "relu", residual=shortcut)
            return head(x)
        return resnet

    def convs(seq: list[Any]) -> list[Any]:
        out = []
        for i, m in enumerate(seq):
            if isinstance(m, torch.nn.Conv2d):
                act = i + 2 < len(seq) and isinstance(seq[i + 2], torch.nn.ReLU6)
                out.append((Conv(m, seq[i + 1]), act))
        return out

    def run(layers: list[Any], x: np.ndarray, residual: bool = False) -> np.ndarray:
        shortcut = x
        for i, (conv, act) in enumerate(layers):
            last = i == len(layers) - 1
            x = conv(x, "relu6" if act else None, residual=shortcut if residual and last else None)
        return x

    stem = convs(mods[:3])
    blocks = [(convs(list(b.body.children())), b.residual) for b in mods[3:-6]]
    last = convs(mods[-6:-3])

    def mobilenet(x: np.ndarray) -> np.ndarray:
        x = run(stem, x)
        for layers, residual in blocks:
            x = run(layers, x, residual)
        return head(run(last, x))
    return mobilenet


# ------------------------------------------------------------------- timing


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def onnx_session(torch: Any, model: Any, x: Any, threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter needs no extra package (the torch.export one
        # needs onnxscript); its deprecation notice is not for our users.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (x,), buffer, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}}, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--networks", nargs="+", default=["resnet18", "mobilenet_v2"])
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    fc.set_num_threads(args.threads)
    builders = {"resnet18": torch_resnet18, "mobilenet_v2": torch_mobilenet_v2}
    print(f"| network | N | ferroconv ms | PyTorch eager ms | ONNX Runtime ms | x PyTorch | x ONNX Runtime "
          f"| max abs diff / max abs logit |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.networks:
        model = builders[name](torch)
        randomise_batchnorm(torch, model)
        model.eval()
        ours = ferroconv_model(torch, model, name)
        for batch in args.batch:
            x = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224), dtype=np.float32)
            tx = torch.from_numpy(x)
            with torch.inference_mode():
                want = model(tx).numpy()
            got = ours(x)
            err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
            if err > 1e-4 or not np.array_equal(got.argmax(1), want.argmax(1)):
                raise SystemExit(f"{name} N={batch}: logits differ from PyTorch (relative error {err:.2e})")
            session = onnx_session(torch, model, tx, args.threads)
            if session is not None:
                onnx_out = session.run(None, {"x": x})[0]
                onnx_err = float(np.max(np.abs(onnx_out - want)) / np.max(np.abs(want)))
                if onnx_err > 1e-4:
                    raise SystemExit(f"{name} N={batch}: ONNX Runtime's logits differ ({onnx_err:.2e})")

            def eager() -> object:
                with torch.inference_mode():
                    return model(tx)
            t_ours = median_ms(lambda: ours(x), args.repeat)
            t_torch = median_ms(eager, args.repeat)
            t_onnx = median_ms(lambda: session.run(None, {"x": x}), args.repeat) if session else float("nan")
            print(f"| {name} | {batch} | {t_ours:.1f} | {t_torch:.1f} | {t_onnx:.1f} | {t_torch / t_ours:.2f} "
                  f"| {t_onnx / t_ours:.2f} | {err:.1e} |", flush=True)


if __name__ == "__main__":
    main()
