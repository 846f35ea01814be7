"""Weight files and checkpoints: .npz and safetensors round trips (also to and from
the safetensors package and PyTorch), strict key checks naming every problem,
atomic writes that survive SIGKILL, and corrupted files refused without changing
the model."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ferroconv import nn
from ferroconv.nn.serialization import atomic_write, read_arrays

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def small_net(seed: int, dtype: Any = np.float32) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, rng=rng, dtype=dtype), nn.BatchNorm2d(3, dtype=dtype),
                         nn.ReLU(), nn.GlobalAvgPool(), nn.Flatten(), nn.Linear(3, 2, rng=rng, dtype=dtype))


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        np.testing.assert_array_equal(sa[key].reshape(-1).view(np.uint8), sb[key].reshape(-1).view(np.uint8), err_msg=key)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_round_trip(tmp_path: Path, suffix: str, dtype: str) -> None:
    if dtype == "bfloat16":
        pytest.importorskip("ml_dtypes")
    net = small_net(0, dtype)
    net(np.random.default_rng(1).standard_normal((4, 2, 5, 5)).astype(net[0].weight.dtype))  # running stats move
    path = tmp_path / f"w{suffix}"
    net.save(path)
    other = small_net(1, dtype)
    other.load(path)
    assert_same_state(net, other)
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary file left behind


def test_files_are_the_field_formats(tmp_path: Path) -> None:
    net = small_net(0)
    net.save(tmp_path / "w.safetensors")
    net.save(tmp_path / "w.npz")
    read = safetensors_numpy.load_file(str(tmp_path / "w.safetensors"))
    with np.load(tmp_path / "w.npz", allow_pickle=False) as archive:
        zipped = {key: archive[key] for key in archive.files}
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(read[key], value)
        np.testing.assert_array_equal(zipped[key], value)
    # and files of other writers are read
    safetensors_numpy.save_file({k: np.asarray(v * 2) for k, v in net.state_dict().items()}, str(tmp_path / "x.safetensors"))
    other = small_net(3)
    other.load(tmp_path / "x.safetensors")
    np.testing.assert_array_equal(other[0].weight.data, 2 * net[0].weight.data)


def test_strict_load_names_every_problem_and_changes_nothing(tmp_path: Path) -> None:
    net = small_net(0)
    state = net.state_dict()
    state["0.weight"] = np.zeros((3, 2, 5, 5), np.float32)  # mis-shaped
    state["5.bias"] = np.zeros(7, np.float32)  # mis-shaped
    del state["1.running_mean"]  # missing
    state["head.weight"] = np.zeros(1, np.float32)  # unexpected
    safetensors_numpy.save_file(state, str(tmp_path / "bad.safetensors"))
    before = net.state_dict()
    with pytest.raises(ValueError) as info:
        net.load(tmp_path / "bad.safetensors")
    message = str(info.value)
    for part in ("missing keys ['1.running_mean']", "unexpected keys ['head.weight']",
                 "0.weight (Conv2d) has shape (3, 2, 3, 3) but the state has shape (3, 2, 5, 5)",
                 "5.bias (Linear) has shape (2,) but the state has shape (7,)"):
        assert part in message
    assert_same_state_dict(net.state_dict(), before)
    # non-strict: unknown and missing keys are skipped, shapes still checked
    del state["0.weight"], state["5.bias"]
    net.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(net[1].running_mean, before["1.running_mean"])


def assert_same_state_dict(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def flipped(good: bytes, position: int) -> bytes:
    changed = bytearray(good)
    changed[position] ^= 0x10
    return bytes(changed)


def corruptions(good: bytes) -> list[tuple[str, bytes]]:
    # in a zip, the first member's name (the date fields before it are not
    # checked, and need not be); in safetensors, the last tensor's shape
    header = 30 if good.startswith(b"PK") else good.rindex(b'"shape"') + 9
    return [("truncated", good[: len(good) // 2]), ("header", flipped(good, header)),
            ("data", flipped(good, len(good) // 2)), ("tail", flipped(good, len(good) - 20)), ("empty", b""),
            ("text", b"hello world, not weights"), ("pickle", pickle.dumps({"0.weight": np.zeros(3)}))]


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_corrupted_files_give_a_clear_error_and_leave_the_model(tmp_path: Path, suffix: str) -> None:
    net = small_net(0)
    good_path = tmp_path / f"good{suffix}"
    net.save(good_path)
    good = good_path.read_bytes()
    target = small_net(1)
    before = target.state_dict()
    for name, payload in corruptions(good):
        bad = tmp_path / f"{name}{suffix}"
        bad.write_bytes(payload)
        with pytest.raises(ValueError, match="is not a readable .npz or safetensors file"):
            target.load(bad)
        assert_same_state_dict(target.state_dict(), before)


def test_npz_with_object_arrays_is_refused(tmp_path: Path) -> None:
    """Loading never unpickles: an object array (pickled inside the .npz) is an error."""
    path = tmp_path / "evil.npz"
    np.savez(path, **{"0.weight": np.array([object()], dtype=object)})
    with pytest.raises(ValueError, match="is not a readable"):
        small_net(0).load(path)


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    path.write_bytes(b"old contents")

    def write(handle: Any) -> None:
        handle.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, write)
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["w.npz"]


KILLED_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from ferroconv import nn
    model = nn.Linear(2000, 2000, dtype=np.float64, rng=0)   # a 32 MB checkpoint
    version = 1
    print("ready", flush=True)
    while True:
        version += 1
        model.weight.data.fill(version)
        nn.save_checkpoint(sys.argv[1], model, step=version)
""")


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_sigkill_while_saving_leaves_a_loadable_checkpoint(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"ckpt{suffix}"
    model = nn.Linear(2000, 2000, dtype=np.float64, rng=0)
    model.weight.data.fill(1)
    nn.save_checkpoint(path, model, step=1)
    for delay in (0.15, 0.4, 0.9):
        child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE)
        assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        loaded = nn.Linear(2000, 2000, dtype=np.float64, rng=1)
        step = nn.load_checkpoint(path, loaded)["step"]
        # a whole checkpoint of one version: the weights all equal its step
        assert np.all(loaded.weight.data == step), step


def test_checkpoint_step_and_generator(tmp_path: Path) -> None:
    model = small_net(0)
    rng = np.random.default_rng(42)
    rng.standard_normal(10)
    path = tmp_path / "run.safetensors"
    nn.save_checkpoint(path, model, step=7, rng=rng)
    expected = rng.standard_normal(5)
    fresh, other = small_net(1), np.random.default_rng(0)
    info = nn.load_checkpoint(path, fresh, rng=other)
    assert info["step"] == 7 and info["rng"] is other
    np.testing.assert_array_equal(other.standard_normal(5), expected)
    assert_same_state(model, fresh)
    # weights alone are not a checkpoint
    model.save(tmp_path / "weights.npz")
    with pytest.raises(ValueError, match="is not a ferroconv checkpoint"):
        nn.load_checkpoint(tmp_path / "weights.npz", fresh)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        nn.save_checkpoint(path, model, rng=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format must be 'npz' or 'safetensors'"):
        model.save(tmp_path / "w", format="pt")


def test_loads_pytorch_weights_by_their_key_names(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    tnn = torch.nn
    theirs = tnn.Sequential(tnn.Conv2d(2, 3, 3, padding=1), tnn.BatchNorm2d(3), tnn.ReLU(),
                            tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(3, 2))
    theirs.train()
    x = np.random.default_rng(0).standard_normal((4, 2, 6, 6)).astype(np.float32)
    theirs(torch.from_numpy(x))  # moves the running statistics
    theirs.eval()
    path = tmp_path / "torch.safetensors"
    safetensors_torch.save_file(theirs.state_dict(), str(path))
    ours = small_net(5).eval()
    ours.load(path)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(x), expected, rtol=1e-5, atol=1e-6)
    assert int(ours[1].num_batches_tracked) == 1
    arrays, _ = read_arrays(path)
    assert set(arrays) == set(ours.state_dict())


RESUME = textwrap.dedent("""
    import sys
    import numpy as np
    from ferroconv import nn

    mode, path, optimizer_name = sys.argv[1], sys.argv[2], sys.argv[3]
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Dropout(0.3, rng=0), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 3, rng=1))
    if optimizer_name == "sgd":
        optimizer = nn.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    else:
        optimizer = (nn.Adam if optimizer_name == "adam" else nn.AdamW)(model.parameters(), lr=0.01)
    schedule = nn.CosineAnnealingLR(optimizer, T_max=10)
    data = np.random.default_rng(7)
    x_all = np.random.default_rng(8).standard_normal((64, 1, 6, 6)).astype(np.float32)
    y_all = np.arange(64) % 3
    loss_fn = nn.CrossEntropyLoss()

    def train(steps):
        for _ in range(steps):
            batch = data.choice(64, size=16, replace=False)
            model[3].rng = data   # dropout draws from the checkpointed generator
            loss_fn(model(x_all[batch]), y_all[batch])
            optimizer.zero_grad()
            model.backward(loss_fn.backward())
            optimizer.step()
            schedule.step()

    if mode == "straight":
        train(10)
    elif mode == "first":
        train(5)
        nn.save_checkpoint(path, model, optimizer, scheduler=schedule, step=5, rng=data)
        sys.exit(0)
    else:
        info = nn.load_checkpoint(path, model, optimizer, scheduler=schedule, rng=data)
        assert info["step"] == 5
        train(5)
    sys.stdout.buffer.write(b"".join(np.ascontiguousarray(p.data).tobytes() for p in model.parameters()))
""")


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_resuming_in_a_fresh_process_is_bit_identical(tmp_path: Path, optimizer: str) -> None:
    """10 steps straight == 5 steps, checkpoint, a new process loads it, 5 more."""
    path = str(tmp_path / "resume.safetensors")

    def run(mode: str) -> bytes:
        result = subprocess.run([sys.executable, "-c", RESUME, mode, path, optimizer], capture_output=True)
        assert result.returncode == 0, result.stderr.decode()
        return result.stdout

    straight = run("straight")
    assert run("first") == b""
    resumed = run("resume")
    assert len(straight) > 0 and resumed == straight


def test_checkpoint_that_does_not_fit_the_optimiser_changes_nothing(tmp_path: Path) -> None:
    model = small_net(0)
    optimizer = nn.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "c.npz"
    nn.save_checkpoint(path, model, optimizer, step=3)
    other = small_net(1)
    before = other.state_dict()
    adam = nn.Adam(other.parameters(), lr=0.1)
    with pytest.raises(ValueError):
        nn.load_checkpoint(path, other, adam)
    assert_same_state_dict(other.state_dict(), before)
