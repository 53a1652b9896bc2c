"""Report decoder: causal transformer conditioned on visual and GK memory, with greedy and beam decoding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def apply_repetition_penalty(logits: torch.Tensor, generated: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL-style penalty: logits of already generated tokens are divided by ``penalty`` when positive and
    multiplied when negative.

    Args:
        logits: ``[N, V]`` next-token logits.
        generated: ``[N, T]`` ids generated so far (BOS included).
        penalty: 1.0 disables.

    Returns:
        ``[N, V]`` penalised logits.
    """
    if penalty == 1.0:
        return logits
    picked = logits.gather(1, generated)
    picked = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits.scatter(1, generated, picked)


class ReportDecoder(nn.Module):
    """Pre-norm transformer decoder with tied input/output embeddings.

    Args:
        vocab_size: vocabulary size (the tokenizer's).
        dim: decoder width.
        memory_dim: width of the conditioning memory (projected to ``dim`` when different).
        num_layers: decoder layers.
        num_heads: attention heads.
        max_length: maximum sequence length (position embeddings).
        bos_id: start token id (the tokenizer's [CLS]).
        eos_id: end token id (the tokenizer's [SEP]).
        pad_id: padding id.
        dropout: dropout.
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        memory_dim: int,
        num_layers: int = 2,
        num_heads: int = 4,
        max_length: int = 128,
        bos_id: int = 101,
        eos_id: int = 102,
        pad_id: int = 0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id
        self.max_length = max_length
        self.token_embed = nn.Embedding(vocab_size, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_length, dim))
        nn.init.normal_(self.token_embed.weight, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)
        self.memory_proj = nn.Linear(memory_dim, dim) if memory_dim != dim else nn.Identity()
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(
                dim,
                num_heads,
                dim_feedforward=4 * dim,
                dropout=dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(
        self, input_ids: torch.Tensor, memory: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Next-token logits.

        Args:
            input_ids: ``[B, T]`` ids (BOS first), ``T <= max_length``.
            memory: ``[B, M, memory_dim]`` conditioning tokens.
            attention_mask: optional ``[B, T]`` 1 for real tokens.

        Returns:
            ``[B, T, V]`` logits; position ``t`` predicts token ``t + 1``.
        """
        return self.project(self.hidden(input_ids, memory, attention_mask))

    def hidden(
        self, input_ids: torch.Tensor, memory: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Final (normalised) hidden states ``[B, T, dim]``; :meth:`project` maps them to logits.

        Training computes logits only at positions with a real target (``project(hidden[keep])``): the
        vocabulary projection is the decoder's largest matmul.
        """
        t = input_ids.shape[1]
        x = self.token_embed(input_ids) + self.pos_embed[:, :t]
        mem = self.memory_proj(memory)
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=input_ids.device), diagonal=1)
        pad = None if attention_mask is None else ~attention_mask.bool()
        for layer in self.layers:
            x = layer(x, mem, tgt_mask=causal, tgt_key_padding_mask=pad)
        return self.norm(x)

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """Tied output projection: ``[..., dim]`` hidden states to ``[..., V]`` logits."""
        return hidden @ self.token_embed.weight.t() + self.out_bias

    @torch.no_grad()
    def generate(
        self,
        memory: torch.Tensor,
        max_length: int = 64,
        num_beams: int = 1,
        repetition_penalty: float = 1.0,
        min_length: int = 1,
        length_penalty: float = 1.0,
    ) -> torch.Tensor:
        """Decode token ids (BOS excluded, EOS/PAD kept).

        ``num_beams == 1`` is greedy. Beam search scores are summed log-probabilities of the penalised logits;
        finished hypotheses are ranked by ``score / length ** length_penalty``. With one beam the result
        equals greedy decoding.

        Args:
            memory: ``[B, M, memory_dim]``.
            max_length: maximum generated tokens (capped by the position table).
            num_beams: beams.
            repetition_penalty: CTRL repetition penalty (1.0 off).
            min_length: EOS is blocked before this many generated tokens.
            length_penalty: exponent of the length normalisation in beam search.

        Returns:
            ``[B, T]`` generated ids, padded with ``pad_id`` after EOS.
        """
        max_length = min(max_length, self.max_length - 1)
        if num_beams <= 1:
            return self._greedy(memory, max_length, repetition_penalty, min_length)
        return self._beam(memory, max_length, num_beams, repetition_penalty, min_length, length_penalty)

    def _next_logprobs(
        self, seq: torch.Tensor, memory: torch.Tensor, step: int, penalty: float, min_length: int
    ) -> torch.Tensor:
        # only the last position's logits are needed: projecting every position onto the vocabulary
        # at every step made decoding ~T times slower
        logits = self.project(self.hidden(seq, memory)[:, -1]).float()
        logits = apply_repetition_penalty(logits, seq, penalty)
        if step < min_length:
            logits[:, self.eos_id] = float("-inf")
        return F.log_softmax(logits, dim=-1)

    def _greedy(self, memory: torch.Tensor, max_length: int, penalty: float, min_length: int) -> torch.Tensor:
        b = memory.shape[0]
        seq = torch.full((b, 1), self.bos_id, dtype=torch.long, device=memory.device)
        done = torch.zeros(b, dtype=torch.bool, device=memory.device)
        for step in range(max_length):
            nxt = self._next_logprobs(seq, memory, step, penalty, min_length).argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, self.pad_id), nxt)
            seq = torch.cat((seq, nxt[:, None]), 1)
            done |= nxt == self.eos_id
            if done.all():
                break
        return seq[:, 1:]

    def _beam(
        self,
        memory: torch.Tensor,
        max_length: int,
        k: int,
        penalty: float,
        min_length: int,
        length_penalty: float,
    ) -> torch.Tensor:
        b = memory.shape[0]
        dev = memory.device
        mem = memory.repeat_interleave(k, 0)
        seq = torch.full((b * k, 1), self.bos_id, dtype=torch.long, device=dev)
        scores = torch.full((b, k), float("-inf"), device=dev)
        scores[:, 0] = 0.0  # identical start beams: keep one alive
        finished: list[list[tuple[float, torch.Tensor]]] = [[] for _ in range(b)]
        for step in range(max_length):
            logp = self._next_logprobs(seq, mem, step, penalty, min_length)  # [b*k, V]
            v = logp.shape[-1]
            cand = (scores.reshape(-1, 1) + logp).reshape(b, k * v)
            top_s, top_i = cand.topk(2 * k, dim=1)
            beam_src, tok = top_i // v, top_i % v
            new_seq, new_scores = [], torch.full((b, k), float("-inf"), device=dev)
            for i in range(b):
                kept = 0
                rows = []
                for rank, (s, src, t) in enumerate(
                    zip(top_s[i].tolist(), beam_src[i].tolist(), tok[i].tolist())
                ):
                    if s == float("-inf"):
                        break
                    hyp = torch.cat((seq[i * k + src], seq.new_tensor([t])))
                    if t == self.eos_id:
                        # like Hugging Face: only an EOS ranked within the top k ends a hypothesis
                        if rank < k:
                            finished[i].append((s / (step + 1) ** length_penalty, hyp))
                            finished[i] = sorted(finished[i], key=lambda f: -f[0])[:k]
                        continue
                    rows.append(hyp)
                    new_scores[i, kept] = s
                    kept += 1
                    if kept == k:
                        break
                while len(rows) < k:
                    rows.append(torch.cat((seq[i * k], seq.new_tensor([self.pad_id]))))
                new_seq.extend(rows)
            seq = torch.stack(new_seq)
            scores = new_scores
            best_alive = scores.max(1).values
            if all(
                len(finished[i]) >= k
                and best_alive[i].item() / (step + 1) ** length_penalty <= finished[i][-1][0]
                for i in range(b)
            ):
                break
        out = []
        for i in range(b):
            cands = list(finished[i])
            length = seq.shape[1] - 1
            for j in range(k):
                if scores[i, j] > float("-inf"):
                    cands.append((scores[i, j].item() / length**length_penalty, seq[i * k + j]))
            out.append(max(cands, key=lambda f: f[0])[1][1:])
        width = max(o.shape[0] for o in out)
        res = torch.full((b, width), self.pad_id, dtype=torch.long, device=dev)
        for i, o in enumerate(out):
            res[i, : o.shape[0]] = o
        return res
