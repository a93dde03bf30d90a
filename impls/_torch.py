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


def prepare(loss_and_grads, params, x, y, dtype: str, device: str, steps: int = 1, *,
            requires_grad: bool) -> Prepared:
    """Bind ``loss_and_grads(params, x, y)`` to tensors converted once to dtype/device.

    With ``steps`` > 1, ``x`` and ``y`` hold that many batches: a call loops over them and sums;
    on a GPU the loop is captured once as a CUDA graph and each call replays it.
    """
    target, torch_dtype = torch_device(device), getattr(torch, dtype)

    def tensor(array, grad=False):
        return torch.tensor(array, dtype=torch_dtype, device=target, requires_grad=grad)

    params_t = [(tensor(W, requires_grad), tensor(b, requires_grad)) for W, b in params]
    x_t, y_t = tensor(x), tensor(y)

    def run():
        return loss_and_grads(params_t, x_t, y_t)

    if steps > 1:
        def run():
            loss, grads = loss_and_grads(params_t, x_t[0], y_t[0])
            for step in range(1, steps):
                more_loss, more = loss_and_grads(params_t, x_t[step], y_t[step])
                loss = loss + more_loss
                grads = [(dW + mW, db + mb) for (dW, db), (mW, mb) in zip(grads, more)]
            return loss, grads

        if target.type == "cuda":
            run = _cuda_graph(run)
    return Prepared(run=run, wait=_waiter(target), to_numpy=to_numpy)


def _cuda_graph(run):
    """``run`` captured once as a CUDA graph; the returned call replays it.

    The recipe of PyTorch's CUDA graph notes: warm up on a side stream (so the caching
    allocator and autograd settle), capture, then replay. The outputs live in the graph's
    static memory and are overwritten by each replay, which the harness's use allows: it reads
    a call's output before making the next call.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = run()

    def replay():
        graph.replay()
        return static_out

    return replay


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


def gpu_free_bytes() -> int | None:
    return torch.cuda.mem_get_info()[0] if torch.cuda.is_available() else None


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
