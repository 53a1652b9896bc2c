"""Benchmark one GK-MVLP pre-training step: time per stage, FLOPs, achieved FLOP/s, peak memory.

Two configurations are measured in the same run, each with its own network, optimizer and data loader:

* ``encoders``: image encoder + text encoder + ITC projections/loss only (ITM, LM, ECLS and grounding
  weights 0, so the network builds and runs none of them);
* ``full``: all objectives with the pre-training bundle's default weights.

Per step: data wait (a real ``DataLoader`` with workers over iu-synth items through the pre-training
transforms), host-to-device copy, forward per stage (forward hooks on the sub-modules of
:class:`~gkmvlp_monai.models.gkmvlp.GKMVLP`; exclusive times, no synchronisation: CPU
``perf_counter`` on CPU, CUDA events on GPU), backward, optimizer step and the rest (``zero_grad``, loop).
Backward is split per stage from one profiled step (``torch.profiler``; each autograd node is attributed
to the forward stage that created it through its sequence number) scaled to the measured backward time.
FLOPs per step come from ``torch.utils.flop_counter.FlopCounterMode`` over forward + backward of the
warm-up step; achieved FLOP/s = FLOPs / mean measured step time, compared with a 2048^3 fp32 matmul timed
in the same run on the same device. Peak memory: ``torch.cuda.max_memory_allocated`` on GPU, the
process's peak resident set size on CPU (the encoders-only configuration runs first, so its figure is its
own).

Usage (repository root)::

    PYTHONPATH=. python bench/train_step.py --device cpu --batch-size 16 --image-size 224 --size base \
        --warmup 1 --steps 2 --json train_step.json
"""

from __future__ import annotations

import argparse
import bisect
import json
import resource
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from monai.transforms import Compose, SelectItemsd
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from gkmvlp_monai.core.paths import data_dir
from gkmvlp_monai.data.datalist import load_datalist
from gkmvlp_monai.data.dataset import collate_skip_bad, make_dataset
from gkmvlp_monai.engine.determinism import EpochSeededDataset
from gkmvlp_monai.engine.trainer import prepare_dict_batch
from gkmvlp_monai.knowledge import vocab
from gkmvlp_monai.knowledge.transforms import EntityTargetsd, ReportEntitiesd
from gkmvlp_monai.models.gkmvlp import GKMVLP, build_gkmvlp
from gkmvlp_monai.models.text import TokenizeReportd
from gkmvlp_monai.transforms.pipelines import cxr_train_transforms

# the demo set the README's first command builds (``python -m gkmvlp_monai.apps.demo --stages data``)
DEFAULT_DATALIST = str(data_dir() / "iu-synth" / "datalist.json")

# forward stages: label -> sub-modules of GKMVLP timed under that label (exclusive of nested stages)
STAGES: dict[str, tuple[str, ...]] = {
    "image encoder": ("image_encoder",),
    "region pooling": ("region_pool",),
    "knowledge encoder": ("knowledge",),
    "GK module": ("gk",),
    "text encoder": ("text_encoder",),
    "ITC proj + loss": ("image_proj", "text_proj", "itc_head", "itc_loss"),
    "ITM fusion + head": ("fusion", "itm_head", "itm_loss"),
    "LM decoder + loss": ("decoder", "lm_loss"),
    "ECLS head + loss": ("ecls_head", "ecls_loss"),
    "grounding loss": ("grounding_loss",),
}
MODULE_STAGE = {m: label for label, mods in STAGES.items() for m in mods}
# sub-module methods the network calls directly (not through ``__call__``, so no module hooks fire)
STAGE_METHODS = {"decoder": ("hidden", "project"), "lm_loss": ("from_selected",)}
FWD_OTHER = "forward glue"
OUTSIDE = ("data wait", "to device", "optimizer", "zero_grad + loop")
ENCODER_STAGES = ("image encoder", "text encoder", "ITC proj + loss")


class Marks:
    """Timestamps at phase boundaries, each labelling the interval that follows it.

    On CPU a mark is ``time.perf_counter()``; on CUDA a recorded event (no synchronisation until
    :meth:`intervals`). Intervals are attributed to the label active after each mark, so nested stages
    are exclusive.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.marks: list[tuple[Any, str]] = []

    def mark(self, label: str) -> None:
        """Close the running interval and open one labelled ``label``."""
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self.marks.append((ev, label))
        else:
            self.marks.append((time.perf_counter(), label))

    def intervals(self) -> dict[str, float]:
        """Seconds per label (the last mark only closes)."""
        if self.cuda:
            torch.cuda.synchronize()
        out: dict[str, float] = defaultdict(float)
        for (t0, label), (t1, _) in zip(self.marks[:-1], self.marks[1:]):
            out[label] += (t0.elapsed_time(t1) / 1e3) if self.cuda else (t1 - t0)
        return dict(out)


class StageTracker:
    """Forward pre/post hooks on the GKMVLP sub-modules: stage boundaries for exclusive timing and, when
    ``track_seq`` is on, the autograd sequence number at each boundary, so every autograd node (hence its
    backward time and FLOPs) can be charged to the forward stage that created it."""

    def __init__(self, model: GKMVLP) -> None:
        self.marks: Marks | None = None
        self.track_seq = False
        self.stack: list[str] = []
        self.label = "start"
        self.seq_bounds: list[tuple[int, str]] = []
        self._probe = torch.zeros((), requires_grad=True)
        self.handles = []
        self._wrapped: list[tuple[Any, str]] = []
        for name, label in MODULE_STAGE.items():
            mod = getattr(model, name, None)
            if mod is None:
                continue
            self.handles.append(mod.register_forward_pre_hook(self._pre(label)))
            self.handles.append(mod.register_forward_hook(self._post))
            for meth in STAGE_METHODS.get(name, ()):
                if hasattr(mod, meth):
                    setattr(mod, meth, self._wrap(getattr(mod, meth), label))
                    self._wrapped.append((mod, meth))

    def boundary(self, label: str) -> None:
        """Open an interval labelled ``label``."""
        self.label = label
        if self.marks is not None:
            self.marks.mark(label)
        if self.track_seq:
            with torch.enable_grad():
                seq = (self._probe * 1).grad_fn._sequence_nr()
            self.seq_bounds.append((seq, label))

    def stage_of_seq(self, seq: int) -> str:
        """The forward stage whose interval created autograd node number ``seq``."""
        i = bisect.bisect_right([b[0] for b in self.seq_bounds], seq) - 1
        return self.seq_bounds[i][1] if i >= 0 else "backward other"

    def _pre(self, label: str):
        def hook(module, args):
            self.stack.append(label)
            self.boundary(label)

        return hook

    def _wrap(self, fn: Any, label: str) -> Any:
        pre = self._pre(label)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            pre(None, args)
            try:
                return fn(*args, **kwargs)
            finally:
                self._post(None, args, None)

        return wrapped

    def _post(self, module, args, output):
        self.stack.pop()
        self.boundary(self.stack[-1] if self.stack else FWD_OTHER)

    def remove(self) -> None:
        """Remove the hooks."""
        for h in self.handles:
            h.remove()
        for mod, meth in self._wrapped:
            delattr(mod, meth)


class StageFlopCounter(FlopCounterMode):
    """``FlopCounterMode`` that also sums FLOPs per forward stage (backward ops by their autograd node)."""

    def __init__(self, tracker: StageTracker) -> None:
        super().__init__(display=False)
        self.tracker = tracker
        self.by_stage: dict[str, int] = defaultdict(int)

    def _count_flops(self, func_packet, out, args, kwargs):
        if func_packet in self.flop_registry:
            n = self.flop_registry[func_packet](*args, **kwargs, out_val=out)
            node = torch._C._current_autograd_node()
            label = self.tracker.label if node is None else self.tracker.stage_of_seq(node._sequence_nr())
            self.by_stage[label] += n
        return super()._count_flops(func_packet, out, args, kwargs)


def make_loader(
    datalist: str, image_size: int, batch_size: int, workers: int, model: GKMVLP
) -> Iterator[dict[str, Any]]:
    """Endless iterator of training batches through the pre-training bundle's transforms."""
    deterministic, random = cxr_train_transforms(image_size)
    text = [
        ReportEntitiesd(keys="entities"),
        EntityTargetsd(keys="entities", normal_study_negatives=True),
        TokenizeReportd(keys="report", tokenizer=model.tokenizer, max_length=model.max_text_length),
        SelectItemsd(
            keys=[
                "image",
                "region_boxes",
                "region_mask",
                "entity_state",
                "entity_regions",
                "input_ids",
                "attention_mask",
            ]
        ),
    ]
    items = load_datalist(datalist, "training")
    if len(items) < batch_size:
        raise ValueError(f"{datalist}: {len(items)} training items, fewer than one batch of {batch_size}")
    base = make_dataset(items, Compose([deterministic, *text]))
    dataset = EpochSeededDataset(base, random, seed=0)
    epoch = 0
    while True:
        dataset.set_epoch(epoch)
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=workers,
            collate_fn=collate_skip_bad,
            generator=torch.Generator().manual_seed(epoch),
            persistent_workers=False,
        )
        yield from loader
        epoch += 1


def matmul_flops_per_s(device: torch.device, n: int = 2048, reps: int = 5) -> float:
    """Best-of-``reps`` fp32 ``n x n @ n x n`` FLOP/s on ``device``."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def backward_split(prof: Any, tracker: StageTracker) -> dict[str, float]:
    """Fraction of backward time per forward stage from a profiled step: each backward node
    (``autograd::engine::evaluate_function: ...``) is charged to the stage that created it (gradient
    accumulation and unknown nodes to ``backward other``)."""
    events = prof.events()
    use_device = any(getattr(ev, "device_time_total", 0) for ev in events)
    totals: dict[str, float] = defaultdict(float)
    for ev in events:
        if not ev.name.startswith("autograd::engine::evaluate_function"):
            continue
        t = ev.device_time_total if use_device else ev.cpu_time_total
        label = tracker.stage_of_seq(ev.sequence_nr) if ev.sequence_nr >= 0 else "backward other"
        totals[label] += t
    s = sum(totals.values()) or 1.0
    return {k: v / s for k, v in totals.items()}


def peak_memory(device: torch.device) -> dict[str, float]:
    """Peak memory in MiB: CUDA allocator peak on GPU, process peak RSS on CPU."""
    if device.type == "cuda":
        return {"cuda_max_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20}
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"cpu_peak_rss_mib": kib / 1024}


def run_config(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Build, warm up (with FLOP counting and profiling) and time one configuration."""
    descs = [e.description for e in vocab.entities()]
    weights = (
        {} if name == "full" else dict(weight_itm=0.0, weight_lm=0.0, weight_ecls=0.0, weight_grounding=0.0)
    )
    torch.manual_seed(0)
    model = build_gkmvlp(size=args.size, image_size=args.image_size, entity_descriptions=descs, **weights)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    hooks = StageTracker(model)
    data = make_loader(args.datalist, args.image_size, args.batch_size, args.num_workers, model)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ref_before = matmul_flops_per_s(device)

    def step(marks: Marks | None) -> dict[str, torch.Tensor]:
        hooks.marks = marks
        mark = hooks.boundary
        mark("data wait")
        batch = next(data)
        mark("to device")
        batch, _ = prepare_dict_batch(batch, device, non_blocking=True)
        mark(FWD_OTHER)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.cpu_bf16):
            out = model(batch)
        mark("backward")
        out["loss"].backward()
        mark("optimizer")
        opt.step()
        mark("zero_grad + loop")
        opt.zero_grad(set_to_none=True)
        mark("end")
        return out

    # warm-up 0: FLOP count and profile (also pays one-time allocation costs)
    counter = StageFlopCounter(hooks)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    hooks.track_seq = True
    with counter, profile(activities=acts) as prof:
        out = step(None)
    hooks.track_seq = False
    bwd_split = backward_split(prof, hooks)
    flops = dict(counter.by_stage)
    total_flops = counter.get_total_flops()
    losses = {k: float(v) for k, v in out.items() if k.startswith("loss")}
    for _ in range(max(0, args.warmup - 1)):
        step(None)

    per_step: list[dict[str, float]] = []
    walls, cpus = [], []
    for _ in range(args.steps):
        marks = Marks(device)
        w0, c0 = time.perf_counter(), time.process_time()
        step(marks)
        times = marks.intervals()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        per_step.append(times)
    hooks.marks = None
    ref_after = matmul_flops_per_s(device)
    mem = peak_memory(device)

    labels = sorted({k for t in per_step for k in t})
    mean = {k: statistics.fmean(t.get(k, 0.0) for t in per_step) for k in labels}
    step_time = sum(mean.values())
    bwd = mean.get("backward", 0.0)
    rows = []
    for label in (*STAGES, FWD_OTHER):
        fwd = mean.get(label, 0.0)
        b = bwd * bwd_split.get(label, 0.0)
        if fwd == 0.0 and b == 0.0 and not flops.get(label):
            continue
        f = flops.get(label, 0)
        rows.append(
            {
                "stage": label,
                "forward_s": fwd,
                "backward_s": b,
                "gflop": f / 1e9,
                "gflop_per_s": (f / (fwd + b) / 1e9) if fwd + b > 0 else 0.0,
            }
        )
    other = bwd * bwd_split.get("backward other", 0.0)
    rows.append(
        {"stage": "backward other", "forward_s": 0.0, "backward_s": other, "gflop": 0.0, "gflop_per_s": 0.0}
    )
    for label in OUTSIDE:
        rows.append(
            {
                "stage": label,
                "forward_s": mean.get(label, 0.0),
                "backward_s": 0.0,
                "gflop": 0.0,
                "gflop_per_s": 0.0,
            }
        )
    ref = (ref_before + ref_after) / 2
    achieved = total_flops / step_time
    outside = sum(mean.get(k, 0.0) for k in OUTSIDE)
    hooks.remove()

    return {
        "config": name,
        "step_s": step_time,
        "step_wall_s": statistics.fmean(walls),
        "step_cpu_s": statistics.fmean(cpus),
        "steps": args.steps,
        "warmup": args.warmup,
        "rows": rows,
        "gflop_per_step": total_flops / 1e9,
        "achieved_gflop_per_s": achieved / 1e9,
        "matmul_gflop_per_s": ref / 1e9,
        "matmul_gflop_per_s_before_after": [ref_before / 1e9, ref_after / 1e9],
        "fraction_of_matmul": achieved / ref,
        "outside_model_s": outside,
        "outside_model_fraction": outside / step_time,
        "forward_s": sum(mean.get(k, 0.0) for k in (*STAGES, FWD_OTHER)),
        "backward_s": bwd,
        "losses": losses,
        **mem,
    }


def print_config(res: dict[str, Any]) -> None:
    """Print one configuration's table."""
    print(f"\n== {res['config']}: {res['steps']} measured steps after {res['warmup']} warm-up")
    print(f"{'stage':<22}{'fwd s':>9}{'bwd s':>9}{'GFLOP':>10}{'GFLOP/s':>10}")
    for r in res["rows"]:
        print(
            f"{r['stage']:<22}{r['forward_s']:>9.3f}{r['backward_s']:>9.3f}{r['gflop']:>10.1f}{r['gflop_per_s']:>10.1f}"
        )
    mem = {k: v for k, v in res.items() if k.endswith("_mib")}
    print(
        f"step {res['step_s']:.3f} s (wall {res['step_wall_s']:.3f} s, CPU {res['step_cpu_s']:.3f} s); "
        f"forward {res['forward_s']:.3f} s, backward {res['backward_s']:.3f} s; "
        f"outside the model {res['outside_model_s']:.3f} s = {100 * res['outside_model_fraction']:.1f} %"
    )
    print(
        f"model FLOPs/step {res['gflop_per_step']:.1f} GFLOP; achieved {res['achieved_gflop_per_s']:.1f} GFLOP/s "
        f"= {res['fraction_of_matmul']:.3f} x matmul 2048^3 ({res['matmul_gflop_per_s']:.1f} GFLOP/s); "
        + ", ".join(f"{k} {v:.0f}" for k, v in mem.items())
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run both configurations, print the tables and the targets."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--size", default="base", choices=["tiny", "cpu", "small", "base"])
    p.add_argument("--steps", type=int, default=5, help="measured steps")
    p.add_argument("--warmup", type=int, default=2, help="warm-up steps (the first counts FLOPs, profiles)")
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--datalist", default=DEFAULT_DATALIST)
    p.add_argument("--configs", default="encoders,full", help="comma-separated: encoders, full")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument(
        "--cpu-bf16", action="store_true", help="forward under CPU bf16 autocast (the bundles' cpu_bf16)"
    )
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 1:
        p.error("--steps and --warmup must be >= 1")
    if not Path(args.datalist).is_file():
        p.error(f"datalist {args.datalist} not found")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch_size}, "
        f"{args.image_size}^2, size {args.size}, workers {args.num_workers}, cpu_bf16 {args.cpu_bf16}",
        flush=True,
    )
    results = {"args": vars(args), "configs": {}}
    for name in args.configs.split(","):
        if name not in ("encoders", "full"):
            p.error(f"unknown config {name!r}")
        res = run_config(name, args, device)
        results["configs"][name] = res
        print_config(res)
        sys.stdout.flush()
    cfg = results["configs"]
    if "full" in cfg and "encoders" in cfg:
        ratio = cfg["full"]["achieved_gflop_per_s"] / cfg["encoders"]["achieved_gflop_per_s"]
        results["targets"] = {
            "full_vs_encoders_flops_ratio": ratio,
            "full_vs_encoders_ok": ratio >= 0.8,
            "outside_fraction": cfg["full"]["outside_model_fraction"],
            "outside_ok": cfg["full"]["outside_model_fraction"] <= 0.10,
        }
        t = results["targets"]
        print(
            f"\ntargets: full/encoders achieved FLOP/s = {ratio:.2f} (>= 0.8: {t['full_vs_encoders_ok']}); "
            f"outside the model {100 * t['outside_fraction']:.1f} % of the full step (<= 10 %: {t['outside_ok']})"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
