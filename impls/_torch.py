"""PyTorch's side of the contract: placing inputs, waiting for CUDA, and runtime facts."""

from __future__ import annotations

import torch

from impls.contract import DeviceUnavailable, Prepared


def torch_device(device: str) -> torch.device:
    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceUnavailable(f"torch {torch.__version__} sees no CUDA GPU")
    return torch.device("cuda")


def prepare(loss_and_grads, params, x, y, dtype: str, device: str, *, requires_grad: bool) -> Prepared:
    """Bind ``loss_and_grads(params, x, y)`` to tensors converted once to dtype/device."""
    target, torch_dtype = torch_device(device), getattr(torch, dtype)

    def tensor(array, grad=False):
        return torch.tensor(array, dtype=torch_dtype, device=target, requires_grad=grad)

    params_t = [(tensor(W, requires_grad), tensor(b, requires_grad)) for W, b in params]
    x_t, y_t = tensor(x), tensor(y)

    def run():
        return loss_and_grads(params_t, x_t, y_t)

    return Prepared(run=run, wait=_waiter(target), to_numpy=to_numpy)


def _waiter(target):
    def wait(out):
        # CPU kernels run eagerly; CUDA ones are queued, so the clock must wait for them.
        if target.type == "cuda":
            torch.cuda.synchronize(target)
    return wait


def _no_result(out):
    return 0.0, []


def ceiling_probe(device: str, n: int) -> Prepared:
    """A float32 (n, n) @ (n, n) product: 2 n^3 flops, the compute ceiling's call."""
    target = torch_device(device)
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=generator).to(target) for _ in range(2))
    return Prepared(run=lambda: a @ b, wait=_waiter(target), to_numpy=_no_result)


def floor_probe(device: str) -> Prepared:
    """One tiny op on one float: the cheapest call that dispatches and waits."""
    target = torch_device(device)
    a = torch.zeros(1, device=target)
    return Prepared(run=lambda: a + 1, wait=_waiter(target), to_numpy=_no_result)


def to_numpy(out):
    loss, grads = out
    return float(loss.item()), [(dW.detach().cpu().numpy(), db.detach().cpu().numpy())
                                for dW, db in grads]


def gpu_available() -> bool:
    return torch.cuda.is_available()


def configure(threads: int, matmul_precision: str) -> None:
    """Pin the intra-op thread count and float32 matmul precision ("highest" or "tensorfloat32")."""
    torch.set_num_threads(threads)
    torch.set_float32_matmul_precision("highest" if matmul_precision == "highest" else "high")
    torch.backends.cudnn.allow_tf32 = matmul_precision != "highest"


def runtime_info() -> dict:
    info = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "torch_float32_matmul_precision": torch.get_float32_matmul_precision(),
            "torch_cuda": torch.version.cuda}
    if torch.cuda.is_available():
        info["torch_gpu"] = torch.cuda.get_device_name(0)
    return info
