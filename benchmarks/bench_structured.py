"""Structured pruning of the standard byte-level transformer: quality of SA++ vs baselines, and real latency.

    .venv/bin/python benchmarks/bench_structured.py [--parts quality,latency,breakdown,page] [--seeds 3]
        [--first-seed 3] [--steps 280] [--scope global|layer|normalised] [--logit-optimizer adam|normalized-sgd]
        [--explore-while-pruning] [--weights-on-explored] [--exploration-share target|mirrored|0.25] [--threads 1]
        [--latency-threads 1 2] [--repeats 20] [--seq-lens 32 64 128 256 512] [--page-runs 2] [--json out.json]

* **quality** — the cached ``standard`` model (trained first if absent: the
  training's time and validation loss are printed), then for every seed the
  dense model trained for the same extra steps and SA++, magnitude, gradient
  importance and random at each fraction of heads *and* MLP blocks removed;
  validation loss (nats/byte) after the same fine-tune, per run and as
  mean ± sd and range over seeds, beside the dense figures; and each run's
  *one-shot* loss: the dense model (as trained) with the run's final mask and
  no training at all, which separates how good a choice of units is for the
  model as it is from how well that choice recovers in the fine-tune.
* **latency** — SA++ models pruned at each fraction (first seed), timed
  against the dense model and the unstructured copies (the same share of each
  block matrix zeroed by magnitude: dense kernels, and CSR) with
  ``measure_structured_latency``: prefill at several lengths and decode, paired
  and interleaved rounds, medians, p25–p75 and per-round ratios, for each
  thread count in ``--latency-threads`` (wall clock), and with one thread on
  the thread's CPU clock too (what a busy shared machine does not inflate); the
  load average is printed with every case, and the whole measurement is taken twice.
* **breakdown** — where a prefill's time goes (one thread, thread CPU time):
  the lean generation path (``TinyGPT.prefill``) against the module ``forward``
  path (the previous prefill), a fit of time = fixed + per-token cost over the
  lengths for the dense and the SA++ 50 % model, the *floor* (a model of the same
  depth with 8-wide layers: every operator call, next to no arithmetic, so the
  cost no removal can shrink while a layer keeps units), and torch.profiler's self CPU
  time by operator class (matmul, attention, GELU, LayerNorm, cache write,
  other) with the operator count at the shortest length.
* **page** — wall time of the Structured pruning page's default run (cached
  model, ``PruningSettings.quick``, every method, 50 % and 75 %, one seed, timing).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seqattn.device import torch_threads  # noqa: E402
from seqattn.sparsity.latency import time_paired  # noqa: E402
from seqattn.sparsity.structured import (  # noqa: E402
    DENSE_REFERENCE,
    EXPLORATION_SHARES,
    LOGIT_OPTIMIZERS,
    SCOPES,
    PruningSettings,
    unit_gates,
    unit_layouts,
)
from seqattn.sparsity.structured_latency import measure_structured_latency  # noqa: E402
from seqattn.sparsity.structured_study import structured_pruning_study  # noqa: E402
from seqattn.sparsity.transformer import (  # noqa: E402
    TinyGPT,
    TransformerConfig,
    bits_per_byte,
    evaluate_loss,
    load_or_train,
)


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def cpu_seconds() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime + resource.getrusage(resource.RUSAGE_SELF).ru_stime


def progress_printer(prefix: str):
    last = [0.0]

    def callback(step: int, total: int, message: str) -> bool:
        if time.time() - last[0] > 60 or step == total:
            last[0] = time.time()
            print(f"    [{prefix} {step}/{total}] {message} ({load()})", flush=True)
        return False

    return callback


def quality(args, trained, dump: dict) -> dict:
    settings = PruningSettings(steps=args.steps, n_cycles=args.cycles, scope=args.scope,
                               logit_optimizer=args.logit_optimizer, explore_while_pruning=args.explore_while_pruning,
                               separate_logit_pass=not args.weights_on_explored,
                               exploration_share=args.exploration_share)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    print(f"\n== quality: heads and MLP blocks removed {args.fractions}, seeds {seeds}, {settings.steps} steps "
          f"per method, {settings.n_cycles} cycle(s), scope {settings.scope}, SA++ logits: "
          f"{settings.logit_optimizer}, lr {settings.logit_learning_rate}, exploring while pruning "
          f"{settings.explore_while_pruning}, logits from a separate pass {settings.separate_logit_pass}, "
          f"share switched off to explore {settings.exploration_share}; "
          f"batch {settings.batch_size} × "
          f"{trained.config.context} bytes, "
          f"{args.threads} thread(s) ==",
          flush=True)
    started, cpu0 = time.time(), cpu_seconds()
    result = structured_pruning_study(trained=trained, fractions=args.fractions, seeds=seeds, settings=settings,
                                      methods=args.methods, dense_reference=not args.skip_dense_reference,
                                      latency=False, device="cpu",
                                      num_threads=args.threads,
                                      callback=progress_printer("quality"))
    print(f"  {time.time() - started:.0f} s wall, {cpu_seconds() - cpu0:.0f} s CPU, {load()}")
    print(f"  dense as trained: val loss {result.dense_val_loss:.4f} nats/byte "
          f"({bits_per_byte(result.dense_val_loss):.3f} bits/byte)")
    one_shot = one_shot_losses(result, trained, settings)
    for r in result.runs:
        print(f"  seed {r.seed} {r.method:<9} {r.fraction:4.0%}: val loss {r.val_loss:.4f}  one-shot "
              f"{one_shot.get((r.method, r.fraction, r.seed), float('nan')):.4f}  heads/layer "
              f"{r.pruned_config.heads}  MLP/layer {r.pruned_config.mlp_hidden}  {r.seconds:.0f} s")
    for title, rows in (("validation loss after the fine-tune", result.summary()),
                        ("one-shot loss (dense weights, final mask, no training)",
                         result.summary(lambda r: one_shot.get((r.method, r.fraction, r.seed))))):
        print(f"\n  {title}\n  method               removed   mean ± sd (min–max) over seeds")
        for row in rows:
            print(f"  {row['method']:<20} {row['fraction removed']:4.0%}   {row['val loss mean']:.4f} ± "
                  f"{row['val loss sd']:.4f} ({row['val loss min']:.4f}–{row['val loss max']:.4f})")
    verdicts(result)
    dump["quality"] = {"summary": result.summary(), "table": result.table(), "dense": result.dense_val_loss,
                       "settings": result.settings,
                       "one_shot": [{"method": m, "fraction": f, "seed": s, "loss": v}
                                    for (m, f, s), v in one_shot.items()]}
    return dump


def one_shot_losses(result, trained, settings: PruningSettings) -> dict[tuple[str, float, int], float]:
    """Validation loss of the dense model as trained with each run's final 0/1 mask: the choice of units alone."""
    dense = trained.model.to("cpu").eval()
    layouts = unit_layouts(dense.config, settings.kinds, settings.mlp_block, settings.embed_block)
    windows = trained.corpus.val_windows(settings.eval_windows, dense.config.context)
    out = {}
    with torch_threads(1):
        for r in result.runs:
            if r.method != DENSE_REFERENCE:
                masks = {k: torch.as_tensor(m, dtype=torch.float32) for k, m in r.masks.items()}
                out[(r.method, r.fraction, r.seed)] = evaluate_loss(dense, windows, unit_gates(layouts, masks))
    return out


def verdicts(result) -> None:
    """Is SA++'s mean lower than each baseline's, and by how much (with the seeds' spread)?"""
    if "SA++" not in result.methods or len(result.methods) < 2:
        return
    print("\n  SA++ vs each baseline (mean over seeds; negative = SA++ lower = better):")
    for fraction in result.fractions:
        sa = [r.val_loss for r in result.runs if r.method == "SA++" and np.isclose(r.fraction, fraction)]
        for method in ("magnitude", "gradient", "random"):
            other = [r.val_loss for r in result.runs if r.method == method and np.isclose(r.fraction, fraction)]
            if sa and other:
                diff = np.mean(sa) - np.mean(other)
                paired = np.array(sa) - np.array(other)
                print(f"    {fraction:.0%}: SA++ − {method:<9} = {diff:+.4f}  (per seed: "
                      + ", ".join(f"{d:+.4f}" for d in paired) + f")  {'met' if diff < 0 else 'NOT met'}")


def sapp_models(args, trained) -> dict:
    """SA++ models pruned at each fraction (first seed, ``--steps``): what the latency parts time."""
    print(f"\n== SA++ at {args.fractions} (seed {args.first_seed}, {args.steps} steps) for the latency parts ==",
          flush=True)
    result = structured_pruning_study(trained=trained, fractions=args.fractions, methods=("SA++",),
                                      seeds=(args.first_seed,), settings=PruningSettings(steps=args.steps),
                                      dense_reference=False, latency=False, device="cpu", num_threads=args.threads)
    for r in result.runs:
        print(f"  SA++ {r.fraction:.0%}: heads/layer {r.pruned_config.heads}, MLP/layer "
              f"{r.pruned_config.mlp_hidden}, val loss {r.val_loss:.4f}", flush=True)
    return {f"SA++ {r.fraction:.0%} (heads {sum(r.pruned_config.heads)}, MLP {sum(r.pruned_config.mlp_hidden)})":
            r.model for r in result.runs}


def seq_lens_for(args, trained) -> tuple[int, ...]:
    return tuple(n for n in args.seq_lens if n <= trained.config.context)


def latency(args, trained, pruned: dict, dump: dict) -> None:
    print(f"\n== latency: SA++ at {args.fractions} (seed {args.first_seed}, {args.steps} steps) vs dense vs "
          "unstructured, prefill and decode ==", flush=True)
    share = min(args.fractions, key=lambda f: abs(f - 0.5))
    context = trained.config.context
    seq_lens = seq_lens_for(args, trained)
    dump["latency"] = []
    runs = [(threads, "wall") for threads in args.latency_threads] + [(1, "thread_cpu")]
    for attempt in (1, 2):
        for threads, clock in runs:
            print(f"\n  -- measurement {attempt}, {threads} thread(s), {clock} clock; {load()} --", flush=True)
            with torch_threads(threads):
                reports = measure_structured_latency(trained.model, pruned, seq_lens, context, share, args.repeats,
                                                     num_threads=threads, device="cpu", clock=clock)
            for rep in reports:
                size = rep.config.get("seq_len", rep.config.get("context_len"))
                print(f"  {rep.kind} {size} tokens ({rep.env['torch_threads']} thread(s), "
                      f"load {rep.env['load_average_1_5_15min']}):")
                for t in rep.timings:
                    print(f"    {t.name:<44} {1e3 * t.median:8.3f} ms  [{1e3 * t.quantile(0.25):.3f}–"
                          f"{1e3 * t.quantile(0.75):.3f}]  ratio {t.ratio_label()}")
            for name, row in reports[0].quality.items():
                print(f"    memory {name:<37} " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()))
            dump["latency"].append({"attempt": attempt, "threads": threads, "clock": clock,
                                    "reports": [r.to_dict() for r in reports]})


def breakdown(args, trained, pruned: dict, dump: dict) -> None:
    """Where a prefill's time goes, one thread: fixed cost + per-token cost (fit over lengths), the floor
    model (the path's fixed cost measured directly), operator classes from torch.profiler at the shortest
    length, and the module ``forward`` path for comparison."""
    name = next(n for n in pruned if n.startswith("SA++ 50%")) if any(n.startswith("SA++ 50%") for n in pruned) \
        else next(iter(pruned))
    models = {"dense": trained.model.eval(), name: pruned[name], FLOOR: floor_model(trained.config)}
    lens = seq_lens_for(args, trained)
    print(f"\n== breakdown: one thread, thread CPU time, {args.repeats * 2} interleaved rounds per length; "
          f"{load()} ==", flush=True)
    dump["breakdown"] = {"fit": {}, "profile": {}, "paths": {}}
    medians = {m: [] for m in models}
    with torch_threads(1), torch.inference_mode():
        for n in lens:
            idx = torch.randint(0, 8, (1, n), generator=torch.Generator().manual_seed(n))  # the floor's vocabulary
            calls = {}
            for label, m in models.items():
                calls[label] = lambda m=m: m.prefill(idx)
                if label != FLOOR:
                    calls[label + " [module forward]"] = lambda m=m: m(idx, cache=m.new_cache(1))[:, -1]
            times, _ = time_paired(calls, "dense", torch.device("cpu"), args.repeats * 2, 3, clock="thread_cpu")
            by = {t.name: t for t in times}
            for label in models:
                medians[label].append(by[label].median)
            print(f"  {n:4d} tokens: " + "; ".join(f"{t.name} {1e3 * t.median:.3f} ms ({t.ratio_label()})"
                                                    for t in times) + f"  [{load()}]", flush=True)
            dump["breakdown"]["paths"][n] = {t.name: {"median_s": t.median, "ratio": t.ratio_quantile(0.5)}
                                            for t in times}
        for label, ys in medians.items():
            slope, fixed = np.polyfit(np.array(lens, float), np.array(ys), 1)
            dump["breakdown"]["fit"][label] = {"fixed_ms": 1e3 * fixed, "per_token_us": 1e6 * slope}
            print(f"  fit {label}: {1e3 * fixed:.3f} ms fixed + {1e6 * slope:.2f} µs per token", flush=True)
        for label, m in models.items():
            shares = operator_classes(m, lens[0])  # the floor model too: what every prefill pays per operator
            dump["breakdown"]["profile"][label] = shares
            print(f"  profile {label}, {lens[0]} tokens (µs per prefill, medians per operator): "
                  + ", ".join(f"{k} {v:.0f}" for k, v in shares.items()), flush=True)


FLOOR = "floor (same depth, 8-wide layers)"


def floor_model(config: TransformerConfig) -> TinyGPT:
    """The dense model's depth and context with one 8-wide head and 8 MLP units per layer, d_model 8 and an
    8-byte vocabulary: every operator call of a prefill and next to no arithmetic, i.e. the fixed cost of
    the generation path that no removal of heads or MLP units can shrink while a layer keeps some of each."""
    n = config.n_layer
    return TinyGPT(TransformerConfig(8, 8, (1,) * n, (8,) * n, config.context, 8)).eval()


def operator_classes(model, n_tokens: int, calls: int = 100) -> dict[str, float]:
    """torch.profiler self time per prefill (µs) by operator class, and the operator count.

    The profiler times each operator by the wall clock, which a busy machine inflates at random (a
    preempted call counts the wait): each operator's time is the *median* over its calls, times how often
    it runs per prefill, so rare long waits drop out.
    """
    from torch.profiler import ProfilerActivity, profile

    classes = {"matmul": ("aten::mm", "aten::addmm", "aten::bmm"), "attention": ("scaled_dot_product",),
               "gelu": ("aten::gelu",), "layer norm": ("layer_norm",), "cache write": ("aten::copy_",)}
    idx = torch.randint(0, model.config.vocab_size, (1, n_tokens), generator=torch.Generator().manual_seed(0))
    for _ in range(5):
        model.prefill(idx)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            model.prefill(idx)
    durations: dict[str, list[float]] = {}
    for event in prof.events():
        durations.setdefault(event.name, []).append(event.self_cpu_time_total)
    out = {k: 0.0 for k in classes} | {"other operators": 0.0}
    for name, times in durations.items():
        kind = next((k for k, keys in classes.items() if any(key in name for key in keys)), "other operators")
        out[kind] += float(np.median(times)) * len(times) / calls
    out["operator calls"] = sum(len(t) for t in durations.values()) / calls
    return out


def page(args, trained, dump: dict) -> None:
    print("\n== the page's default run (cached model, PruningSettings.quick, every method, 50% and 75%, "
          "one seed, timing) ==", flush=True)
    dump["page"] = []
    for attempt in range(1, args.page_runs + 1):
        started, cpu0 = time.time(), cpu_seconds()
        before = load()
        result = structured_pruning_study("standard", fractions=(0.5, 0.75), settings=PruningSettings.quick(),
                                          device="cpu", latency_repeats=10)
        wall, cpu = time.time() - started, cpu_seconds() - cpu0
        print(f"  run {attempt}: {wall:.1f} s wall, {cpu:.1f} s CPU ({before} → {load()}); from cache "
              f"{result.model['from_cache']}; seconds {({k: round(v, 1) for k, v in result.seconds.items()})}")
        for row in result.summary():
            print(f"    {row['method']:<20} {row['fraction removed']:4.0%} val loss {row['val loss mean']:.4f} "
                  f"prefill ratio {row['prefill ratio (longest)']}")
        dump["page"].append({"wall_s": wall, "cpu_s": cpu, "summary": result.summary()})


def exploration_share(text: str) -> str | float:
    return text if text in EXPLORATION_SHARES else float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="quality,latency,breakdown,page")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=3, help="seeds 0–2 were used to choose the settings")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.5, 0.75])
    parser.add_argument("--steps", type=int, default=PruningSettings().steps)
    parser.add_argument("--cycles", type=int, default=PruningSettings().n_cycles,
                        help="(sparsify → sparse → dense) cycles before the final sparsify")
    parser.add_argument("--scope", default=PruningSettings().scope, choices=list(SCOPES),
                        help="SA++'s softmax and every method's pruning over all units of a kind (global), within "
                             "each layer (layer), or a softmax per layer and pruning over all units (normalised)")
    parser.add_argument("--logit-optimizer", default=PruningSettings().logit_optimizer, choices=list(LOGIT_OPTIMIZERS))
    parser.add_argument("--explore-while-pruning", action="store_true",
                        help="SA++: keep switching off random alive units during the sparsify ramps")
    parser.add_argument("--weights-on-explored", action="store_true",
                        help="SA++ as first built: one pass per step, the weights train on the explored subnetworks")
    parser.add_argument("--exploration-share", type=exploration_share, default=PruningSettings().exploration_share,
                        help="SA++: share of the alive units switched off at random in warm-up and dense steps for "
                             "a target fraction f: target (f), mirrored (min(f, 1 − f)) or a number c (min(f, c))")
    parser.add_argument("--methods", nargs="+", default=["SA++", "magnitude", "gradient", "random"])
    parser.add_argument("--skip-dense-reference", action="store_true",
                        help="do not train the dense model for the same steps (e.g. a second process does)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training and pruning")
    parser.add_argument("--latency-threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=20, help="timing rounds for prefill (decode: 2×)")
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[32, 64, 128, 256, 512],
                        help="prefill lengths (those beyond the model's context are left out)")
    parser.add_argument("--page-runs", type=int, default=2, help="how often the page's default run is timed")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"cpu_count {os.cpu_count()}, {load()}", flush=True)
    started, cpu0 = time.time(), cpu_seconds()
    with torch_threads(args.threads):
        trained = load_or_train("standard", device="cpu", num_threads=args.threads,
                                callback=progress_printer("training"))
    rec = trained.record
    print(f"standard model: {trained.model.n_parameters():,} parameters, "
          + ("loaded from the cache" if trained.from_cache else
             f"trained now: {time.time() - started:.0f} s wall, {cpu_seconds() - cpu0:.0f} s CPU")
          + f"; recorded training {rec['train_seconds']:.0f} s wall, val loss {rec['val_loss']:.4f} nats/byte "
          f"({rec['val_bits_per_byte']:.3f} bits/byte); corpus {trained.corpus.describe()}", flush=True)
    dump: dict = {"model": {k: v for k, v in rec.items() if k != "history"}, "corpus": trained.corpus.describe()}
    if "quality" in parts:
        quality(args, trained, dump)
    pruned = sapp_models(args, trained) if parts & {"latency", "breakdown"} else {}
    if "latency" in parts:
        latency(args, trained, pruned, dump)
    if "breakdown" in parts:
        breakdown(args, trained, pruned, dump)
    if "page" in parts:
        page(args, trained, dump)
    print(f"\n{load()}, total {time.time() - started:.0f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(dump, indent=1, default=str))


if __name__ == "__main__":
    main()
