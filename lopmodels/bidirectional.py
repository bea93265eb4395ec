"""A bidirectional one-layer GRU or LSTM with a hand-written backward through time, for the CPU.

Why not `nn.GRU` / `nn.LSTM`: on the CPU their packed form builds, in the backward pass, a zero gradient of
the whole input projection at every time step and adds them up, and autograd records a dozen small
operations per step and direction. Here, instead:

- the tokens are packed as in a `PackedSequence` (sorted by length, step by step, padding dropped), the
  reverse direction reading each sequence reversed within its length; so at step i both directions need
  the same rows (the sequences longer than i), and one batched product `[2, gates*H, H] x [2, H, n_i]` and
  one set of elementwise operations serve both directions;
- inside the loop every tensor is feature-major, `[2 directions, features, tokens of the step]`, one
  contiguous block per step: a gate is a block of rows and each row is contiguous, what the elementwise
  kernels run fastest on;
- the backward through time is written out by hand, a few fused elementwise passes per step (`addcmul`,
  `lerp`, activations in place), each step's gate gradients in one buffer, the weights' gradients
  accumulated per step and the previous state's gradient in place.

`bidirectional` returns what a packed `nn.GRU`/`nn.LSTM` returns: the final states (the forward direction's
at each sequence's last token, the reverse direction's at its first) and, on request, every step's outputs in
time order, zero at padding positions. The parameters stay in `nn.GRU`/`nn.LSTM` layout (gate order r, z, n
and i, f, g, o; `_reverse` for the second direction), so models keep their module and its parameter names.
Outputs and gradients equal PyTorch's: to 1e-12 in float64, within float32 rounding in float32
(tests/test_bidirectional.py; docs/performance.md has the design's measurements).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.autograd.function import once_differentiable

CELLS = ("gru", "lstm")
GATES = {"gru": 3, "lstm": 4}


def check_shapes(cell: str, x: torch.Tensor, lengths: torch.Tensor | None, weights: Sequence[torch.Tensor],
                 embedding: nn.Embedding | None) -> None:
    """Refuse, naming the shapes, anything this layer does not compute (it never returns a wrong result)."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
    if len(weights) != 8:
        raise ValueError(f"expected 8 weights (w_ih, w_hh, b_ih, b_hh of both directions), got {len(weights)}")
    if embedding is None and (x.dim() != 3 or x.shape[0] < 1 or x.shape[1] < 1):
        raise ValueError(f"inputs must be [batch >= 1, time >= 1, features], got shape {tuple(x.shape)}")
    if embedding is not None and (x.dim() != 2 or x.shape[0] < 1 or x.shape[1] < 1 or x.is_floating_point()):
        raise ValueError(f"token ids must be integers of shape [batch >= 1, time >= 1], got {x.dtype} "
                         f"of shape {tuple(x.shape)}")
    features = x.shape[2] if embedding is None else embedding.embedding_dim
    dtype = x.dtype if embedding is None else embedding.weight.dtype
    gates, hidden = GATES[cell], weights[1].shape[1]
    expected = [(gates * hidden, features), (gates * hidden, hidden), (gates * hidden,), (gates * hidden,)] * 2
    actual = [tuple(w.shape) for w in weights]
    if actual != expected:
        raise ValueError(f"{cell} weights of shapes {actual} do not fit inputs of {features} features and "
                         f"{hidden} hidden units; expected {expected}")
    if any(w.dtype != dtype or w.device != x.device for w in weights):
        raise ValueError(f"inputs ({dtype}, {x.device}) and weights must share one dtype and device")
    if lengths is not None:
        if lengths.shape != (x.shape[0],) or lengths.is_floating_point():
            raise ValueError(f"lengths must be integers of shape ({x.shape[0]},), got {lengths.dtype} "
                             f"of shape {tuple(lengths.shape)}")
        if int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]:
            raise ValueError(f"lengths must lie in 1..{x.shape[1]} (the padded time dimension), got "
                             f"{int(lengths.min())}..{int(lengths.max())}")


@dataclass(frozen=True)
class Packing:
    """Where each token of a padded batch [B, T] goes in the packed layout, and back.

    Packed position p = offsets[i] + k holds step i of the k-th longest sequence; the forward direction's
    step i reads time i, the reverse direction's reads time length - 1 - i.
    """

    sizes: tuple[int, ...]  # sequences still running at each step
    offsets: tuple[int, ...]  # first packed position of each step
    gather: torch.Tensor  # [2N]: index into the flat [B*T] tokens, forward direction's steps then reverse's
    final: torch.Tensor  # [B]: packed position of each sequence's last step, in batch order

    @classmethod
    def of(cls, lengths: torch.Tensor | None, batch: int, steps: int, device: torch.device) -> "Packing":
        lengths = torch.full((batch,), steps) if lengths is None else lengths.cpu().long()
        order = torch.argsort(lengths, descending=True, stable=True)
        ordered = lengths[order]
        sizes = (ordered[None, :] > torch.arange(int(ordered[0]))[:, None]).sum(dim=1)
        offsets = sizes.cumsum(0) - sizes
        step = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
        rank = torch.arange(len(step)) - offsets[step]  # k: the sequence's place in length order
        row = order[rank]
        forward = row * steps + step
        reverse = row * steps + ordered[rank] - 1 - step
        final = torch.empty(batch, dtype=torch.long)
        final[order] = offsets[ordered - 1] + torch.arange(batch)
        return cls(tuple(sizes.tolist()), tuple(offsets.tolist()),
                   torch.cat((forward, reverse)).to(device), final.to(device))

    def pack(self, x: torch.Tensor, embedding: nn.Embedding | None) -> torch.Tensor:
        """[2, N, I] from [B, T, I], or from token ids [B, T] embedded after packing (fewer values to move):
        each direction's tokens in its packed step order."""
        if embedding is not None:
            return embedding(x.reshape(-1).index_select(0, self.gather)).view(2, -1, embedding.embedding_dim)
        return x.reshape(-1, x.shape[2]).index_select(0, self.gather).view(2, -1, x.shape[2])

    def unpack(self, packed: torch.Tensor, batch: int, steps: int) -> torch.Tensor:
        """[B, T, 2H] in time order from packed outputs [2, N, H], zero at padding positions."""
        hidden = packed.shape[2]
        out = packed.new_zeros(2, batch * steps, hidden)
        out = out.index_put((torch.arange(2, device=packed.device)[:, None], self.gather.view(2, -1)), packed)
        return out.view(2, batch, steps, hidden).permute(1, 2, 0, 3).reshape(batch, steps, 2 * hidden)


def bidirectional(cell: str, x: torch.Tensor, lengths: torch.Tensor | None, weights: Sequence[torch.Tensor],
                  sequence: bool = False, embedding: nn.Embedding | None = None,
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`(h_n [2, B, H], out [B, T, 2H] or None)` of a bidirectional `cell` over `x` [B, T, I], or over token
    ids `x` [B, T] looked up in `embedding`.

    `weights`: w_ih, w_hh, b_ih, b_hh of the forward direction, then of the reverse one (`nn.GRU` /
    `nn.LSTM` layout). `lengths` (integers, or None when every sequence fills T): each sequence's true
    length. `h_n` holds the forward state at each sequence's last token and the reverse state at its
    first; `out` (only with `sequence`) every step's states, zero at padding positions.
    """
    check_shapes(cell, x, lengths, weights, embedding)
    batch, steps = x.shape[:2]
    packing = Packing.of(lengths, batch, steps, x.device)
    w_ih, w_hh, b_ih, b_hh = (torch.stack((weights[k], weights[k + 4])) for k in range(4))
    xs = packing.pack(x, embedding)
    if cell == "gru":
        states = _GRU.apply(xs, w_ih, w_hh, b_ih, b_hh, packing)
    else:  # gates in the order i, f, o, g inside, one bias
        H = w_hh.shape[2]
        w_ih, w_hh, bias = (reorder(w, _LSTM.IFOG, H) for w in (w_ih, w_hh, b_ih + b_hh))
        states = _LSTM.apply(xs, w_ih, w_hh, bias, packing)
    h_n = states[..., packing.final].transpose(1, 2)  # states are feature-major, [2, H, N]
    return h_n, (packing.unpack(states.transpose(1, 2), batch, steps) if sequence else None)


def reorder(tensor: torch.Tensor, blocks: Sequence[int], hidden: int) -> torch.Tensor:
    """`tensor` with its gate blocks of `hidden` rows (dimension 1) in the order `blocks`."""
    return torch.cat([tensor[:, b * hidden : (b + 1) * hidden] for b in blocks], dim=1)


class Steps:
    """Step i's columns of the packed tokens and the columns of the previous step its states start from.

    Inside the loops every tensor is feature-major, [2, features, tokens of the step]: a gate is a block
    of rows and each row is contiguous, which is what the elementwise operations run fastest on.
    """

    def __init__(self, packing: Packing) -> None:
        self.sizes, self.offsets = packing.sizes, packing.offsets

    def __len__(self) -> int:
        return len(self.sizes)

    def columns(self, i: int) -> slice:
        return slice(self.offsets[i], self.offsets[i] + self.sizes[i])

    def previous(self, i: int) -> slice:
        """The first sizes[i] columns of step i - 1: the sequences that are still running."""
        return slice(self.offsets[i - 1], self.offsets[i - 1] + self.sizes[i])


def save_steps(ctx, packing: Packing, fixed: Sequence[torch.Tensor], *per_step: list[torch.Tensor]) -> torch.Tensor:
    """Keep the fixed tensors and every step's tensors for the backward pass; return the packed states
    [2, H, N] (the first list of `per_step`)."""
    ctx.save_for_backward(*fixed, *(t for group in per_step for t in group))
    ctx.packing, ctx.fixed = packing, len(fixed)
    return torch.cat(per_step[0], dim=2)


def saved_steps(ctx) -> tuple[list[torch.Tensor], Steps, list[Sequence[torch.Tensor]]]:
    """(the fixed tensors, the steps, each per-step group) as `save_steps` kept them."""
    saved, steps = ctx.saved_tensors, Steps(ctx.packing)
    fixed, rest, count = list(saved[: ctx.fixed]), saved[ctx.fixed :], len(steps)
    return fixed, steps, [rest[k : k + count] for k in range(0, len(rest), count)]


def step_inputs(xs: torch.Tensor, steps: Steps, i: int) -> torch.Tensor:
    """[2, n_i, I]: step i's inputs, token-major (contiguous rows)."""
    return xs[:, steps.columns(i)]


def tanh_(t: torch.Tensor) -> torch.Tensor:
    """tanh in place as 2 sigmoid(2 t) - 1: PyTorch's CPU tanh is several times slower than its sigmoid
    (221 against 37 us on [2, 64, 512] here); the identity costs at most 2e-7 absolute in float32."""
    return t.mul_(2).sigmoid_().mul_(2).sub_(1)


class _GRU(torch.autograd.Function):
    """Packed bidirectional GRU: r = σ(W_ir x + b_ir + W_hr h + b_hr), z likewise,
    n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h = lerp(n, h, z)."""

    @staticmethod
    def forward(ctx, xs, w_ih, w_hh, b_ih, b_hh, packing):
        steps = Steps(packing)
        H = w_hh.shape[2]
        # b_hr and b_hz join the input projection's bias; b_hn stays inside r (W_hn h + b_hn)
        folded = (b_ih + torch.cat((b_hh[:, : 2 * H], torch.zeros_like(b_hh[:, 2 * H :])), dim=1))[..., None]
        b_hn = b_hh[:, 2 * H :, None]
        states, gates, hidden_gates = [], [], []  # per step: h' [2, H, n], (r, z, n) and W_hn h + b_hn
        for i in range(len(steps)):
            g = torch.baddbmm(folded, w_ih, step_inputs(xs, steps, i).transpose(1, 2))  # [2, 3H, n]
            if i:
                h = states[i - 1][..., : steps.sizes[i]]
                gh = torch.bmm(w_hh, h)
                g[:, : 2 * H].add_(gh[:, : 2 * H])
                ghn = gh[:, 2 * H :].add_(b_hn)
            else:  # the initial state is zero
                h = xs.new_zeros(2, H, steps.sizes[0])
                ghn = b_hn.expand(-1, -1, steps.sizes[0])
            g[:, : 2 * H].sigmoid_()
            r, z = g[:, :H], g[:, H : 2 * H]
            n = tanh_(g[:, 2 * H :].addcmul_(r, ghn))
            states.append(torch.lerp(n, h, z))
            gates.append(g)
            hidden_gates.append(ghn)
        return save_steps(ctx, packing, (xs, w_ih, w_hh), states, gates, hidden_gates)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_states):
        (xs, w_ih, w_hh), steps, (states, gates, hidden_gates) = saved_steps(ctx)
        count = len(steps)
        H = w_hh.shape[2]
        dstates = grad_states.clone(memory_format=torch.contiguous_format)  # accumulates each state's gradient
        # per step, the gradients of W_hn h + b_hn and of r, z, n before their nonlinearity: the first three
        # blocks are the recurrent product's (in n, r, z order), the last three the input projection's
        w_hh_nrz_t = reorder(w_hh, (2, 0, 1), H).transpose(1, 2)
        grad_w_ih, grad_w_hh_nrz = torch.zeros_like(w_ih), torch.zeros_like(w_hh)
        grad_b_ih, grad_b_hh_nrz = w_ih.new_zeros(2, 3 * H), w_hh.new_zeros(2, 3 * H)
        grad_xs = [None] * count
        for i in reversed(range(count)):
            dh = dstates[..., steps.columns(i)]
            g, ghn = gates[i], hidden_gates[i]
            r, z, n = g[:, :H], g[:, H : 2 * H], g[:, 2 * H :]
            d = g.new_empty(2, 4 * H, steps.sizes[i])
            d_ghn, d_r, d_z, d_n = d[:, :H], d[:, H : 2 * H], d[:, 2 * H : 3 * H], d[:, 3 * H :]
            dn = torch.addcmul(dh, dh, z, value=-1)  # dh (1 - z)
            torch.mul(dn, n, out=d_n)
            torch.addcmul(dn, d_n, n, value=-1, out=d_n)  # dn (1 - n^2)
            torch.mul(d_n, r, out=d_ghn)
            torch.mul(d_ghn, ghn, out=d_r)
            torch.addcmul(d_r, d_r, r, value=-1, out=d_r)  # d_n ghn r (1 - r)
            if i:
                h = states[i - 1][..., : steps.sizes[i]]
                torch.sub(h, n, out=d_z).mul_(z).mul_(dn)  # dh (h - n) z (1 - z)
            else:
                torch.mul(n, dn, out=d_z).mul_(z).neg_()  # h = 0: dh (0 - n) z (1 - z)
            recurrent, inputs = d[:, : 3 * H], d[:, H:]
            grad_w_ih.baddbmm_(inputs, step_inputs(xs, steps, i))
            grad_b_ih += inputs.sum(dim=2)
            grad_b_hh_nrz += recurrent.sum(dim=2)
            grad_xs[i] = torch.bmm(inputs.transpose(1, 2), w_ih)
            if i:
                grad_w_hh_nrz.baddbmm_(recurrent, h.transpose(1, 2))
                # the previous state's gradient: dh z directly, and through the recurrent product
                dstates[..., steps.previous(i)].add_(torch.bmm(w_hh_nrz_t, recurrent)).addcmul_(dh, z)
        grad_w_hh = reorder(grad_w_hh_nrz, (1, 2, 0), H)
        grad_b_hh = reorder(grad_b_hh_nrz, (1, 2, 0), H)
        return torch.cat(grad_xs, dim=1), grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, None


class _LSTM(torch.autograd.Function):
    """Packed bidirectional LSTM: i, f, o = σ(·), g = tanh(·) of W_ih x + W_hh h + b; c' = f c + i g,
    h' = o tanh(c'). The gates come in the order i, f, o, g, so one call applies the sigmoid to three."""

    IFOG = (0, 1, 3, 2)  # PyTorch's blocks i, f, g, o read in the order i, f, o, g (its own inverse)

    @staticmethod
    def forward(ctx, xs, w_ih, w_hh, bias, packing):
        steps = Steps(packing)
        H = w_hh.shape[2]
        bias = bias[..., None]
        states, cells, tanh_cells, gates = [], [], [], []  # per step: h', c', tanh(c'), (i, f, o, g)
        for i in range(len(steps)):
            g = torch.baddbmm(bias, w_ih, step_inputs(xs, steps, i).transpose(1, 2))  # [2, 4H, n]
            if i:
                g.baddbmm_(w_hh, states[i - 1][..., : steps.sizes[i]])
            g[:, : 3 * H].sigmoid_()
            tanh_(g[:, 3 * H :])
            in_, forget, out, cand = g[:, :H], g[:, H : 2 * H], g[:, 2 * H : 3 * H], g[:, 3 * H :]
            c = in_ * cand
            if i:
                c.addcmul_(forget, cells[i - 1][..., : steps.sizes[i]])
            tc = tanh_(c.clone())
            states.append(out * tc)
            cells.append(c)
            tanh_cells.append(tc)
            gates.append(g)
        return save_steps(ctx, packing, (xs, w_ih, w_hh), states, cells, tanh_cells, gates)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_states):
        (xs, w_ih, w_hh), steps, (states, cells, tanh_cells, gates) = saved_steps(ctx)
        count = len(steps)
        H = w_hh.shape[2]
        dstates = grad_states.clone(memory_format=torch.contiguous_format)  # accumulates each state's gradient
        w_hh_t = w_hh.transpose(1, 2)
        grad_w_ih, grad_w_hh = torch.zeros_like(w_ih), torch.zeros_like(w_hh)
        grad_bias = w_ih.new_zeros(2, 4 * H)
        grad_xs = [None] * count
        carried = None  # the gradient of the cell of step i, from step i + 1 (its first sizes[i + 1] columns)
        for i in reversed(range(count)):
            dh = dstates[..., steps.columns(i)]
            g, tc = gates[i], tanh_cells[i]
            in_, forget, out, cand = g[:, :H], g[:, H : 2 * H], g[:, 2 * H : 3 * H], g[:, 3 * H :]
            d = g.new_empty(2, 4 * H, steps.sizes[i])
            d_in, d_forget, d_out, d_cand = d[:, :H], d[:, H : 2 * H], d[:, 2 * H : 3 * H], d[:, 3 * H :]
            through_h = dh * out
            through_tc = through_h * tc  # dh o tanh(c')
            dcell = through_h.addcmul_(through_tc, tc, value=-1)  # dh o (1 - tanh^2 c')
            if carried is not None:
                dcell[..., : carried.shape[2]] += carried
            torch.addcmul(through_tc, through_tc, out, value=-1, out=d_out)  # dh tanh(c') o (1 - o)
            torch.mul(dcell, cand, out=d_in).mul_(in_)
            torch.addcmul(d_in, d_in, in_, value=-1, out=d_in)  # dcell g i (1 - i)
            torch.mul(dcell, in_, out=d_cand)
            torch.addcmul(d_cand, d_cand * cand, cand, value=-1, out=d_cand)  # dcell i (1 - g^2)
            if i:
                c = cells[i - 1][..., : steps.sizes[i]]
                torch.mul(dcell, c, out=d_forget).mul_(forget)
                torch.addcmul(d_forget, d_forget, forget, value=-1, out=d_forget)  # dcell c f (1 - f)
                carried = dcell.mul_(forget)
            else:
                d_forget.zero_()  # c = 0
            x = step_inputs(xs, steps, i)
            grad_w_ih.baddbmm_(d, x)
            grad_bias += d.sum(dim=2)
            grad_xs[i] = torch.bmm(d.transpose(1, 2), w_ih)
            if i:
                h = states[i - 1][..., : steps.sizes[i]]
                grad_w_hh.baddbmm_(d, h.transpose(1, 2))
                dstates[..., steps.previous(i)] += torch.bmm(w_hh_t, d)
        return torch.cat(grad_xs, dim=1), grad_w_ih, grad_w_hh, grad_bias, None
