"""``aftercare anomaly nab|skab|scenarios``: the benchmark runs, with the detectors the worker
uses."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aftercare.cli_args import float_in, int_in
from evaluation import nab, skab


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aftercare anomaly", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    n = sub.add_parser("nab", help="score NAB-format CSVs causally and write NAB results files")
    n.add_argument("--data", type=Path, required=True, help="folder with NAB data CSVs")
    n.add_argument("--out", type=Path, required=True, help="results folder (NAB layout)")
    s = sub.add_parser("skab", help="run on SKAB-format CSVs and print F1, FAR and MAR")
    s.add_argument("--data", type=Path, required=True, help="folder with SKAB CSVs")
    s.add_argument("--out", type=Path, help="write per-row 0/1 predictions per file here")
    c = sub.add_parser("scenarios", help="run the worker's detector bank over simulator "
                       "scenarios offline and score it against their fault labels")
    c.add_argument("--scenario", type=Path, action="append", default=None,
                   help="scenario YAML (repeatable; default: every built-in single-fault "
                        "scenario)")
    c.add_argument("--days", type=float_in(0.0, above=True),
                   help="simulated days per scenario (default: the file's duration_s, else "
                        "1 day)")
    c.add_argument("--fleet-size", type=int_in(0), default=0,
                   help="grow each scenario's fleet to this many devices with healthy ones of "
                        "the same models (as `aftercare demo` does): more device-days for the "
                        "false-alert rate")
    c.add_argument("--no-models", action="store_true",
                   help="watch every device as equipment nobody has described (no profile): "
                        "the generic detection unknown machines get")
    c.add_argument("--seed-shift", type=int, default=0,
                   help="add this to every scenario's seed: the same faults on other noise and "
                        "healthy machines (held-out data for settings chosen on the shipped seeds)")
    c.add_argument("--history-days", type=float_in(0.0), default=0.0,
                   help="give every machine this many days of healthy history before its "
                        "faults (each fault comes that much later): how a machine in the "
                        "field goes wrong, after the detectors have learned it")
    c.add_argument("--slower", type=float_in(0.0, above=True), default=1.0,
                   help="every fault develops this many times slower (failure, repair and "
                        "ramp that much further from its onset, a drift that much slower; the "
                        "run extended to match): wear over days instead of an hour")
    c.add_argument("--schedule", default=None,
                   help="run every machine on this operating schedule instead of the file's: "
                        "continuous, two_shift (Mon-Fri 06-22 UTC) or one_shift (Mon-Fri "
                        "07-16 UTC); the runs start on a Monday at 00:00 UTC")
    v = sub.add_parser("crossval", help="choose the NAB / SKAB settings by cross-validation "
                       "and print the held-out scores next to the tuned ones")
    v.add_argument("--nab", type=Path, help="NAB repository (data/ and labels/)")
    v.add_argument("--skab", type=Path, help="SKAB data folder (with valve1/ and valve2/)")
    v.add_argument("--select", default="pooled",
                   help="how the NAB grid point is chosen on the training categories: pooled "
                        "(their files pooled), mean (each category weighs the same), or both "
                        "as 'pooled,mean' (one run of the grid)")
    return p


def _crossval(nab_dir: Path | None, skab_dir: Path | None, select: str = "pooled") -> int:
    from evaluation import crossval

    if nab_dir is None and skab_dir is None:
        print("crossval: give --nab and/or --skab", file=sys.stderr)
        return 2
    try:
        if nab_dir is not None:
            by = crossval.nab_crossval_by(
                nab_dir, progress=lambda m: print("  grid", m, flush=True),
                selects=[x.strip() for x in select.split(",") if x.strip()])
            for rule, cv in by.items():
                print(f"NAB leave-one-category-out (left-out category at the open level 0.5; "
                      f"grid point chosen by the {rule} training score):")
                for f in cv.folds:
                    held = " / ".join(f"{v:.1f}" for v in f.held_out.values())
                    print(f"  {f.name}: held-out {held} (standard / low FP / low FN); "
                          f"train {f.train:.1f}; chosen {crossval.describe(f.settings)}")
                print("  pooled held-out: "
                      + " / ".join(f"{v:.1f}" for v in cv.pooled.values()))
                print("  tuned on all files (in-sample): "
                      + " / ".join(f"{v:.1f}" for v in cv.tuned.values())
                      + f"; {crossval.describe(cv.tuned_settings)}")
        if skab_dir is not None:
            print("SKAB valve cross-validation (F1 / FAR % / MAR %):")
            *folds, tuned = crossval.skab_crossval(skab_dir)
            for s in folds:
                print(f"  tuned on {s.train} {s.train_score.f1:.3f} / {s.train_score.far:.2f}"
                      f" / {s.train_score.mar:.2f} -> {s.test} {s.held_out.f1:.3f} / "
                      f"{s.held_out.far:.2f} / {s.held_out.mar:.2f}; "
                      f"chosen {crossval.describe(s.settings)}")
            left_out = folds[0].held_out + folds[1].held_out
            print(f"  pooled held-out: {left_out.f1:.3f} / {left_out.far:.2f} / "
                  f"{left_out.mar:.2f}")
            print(f"  tuned on both (in-sample): {tuned.held_out.f1:.3f} / "
                  f"{tuned.held_out.far:.2f} / {tuned.held_out.mar:.2f}; "
                  f"{crossval.describe(tuned.settings)}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _scenarios(paths: list[Path] | None, days: float | None, fleet_size: int = 0,
               models: bool = True, seed_shift: int = 0, history_days: float = 0.0,
               slower: float = 1.0, schedule: str | None = None) -> int:
    from evaluation import evaluate
    from simulators.scenario import ScenarioError, builtin, builtin_names

    if not paths:
        paths = [builtin(n) for n in builtin_names() if n != "demo"]
    try:
        result = evaluate.run_files(paths, days=days, fleet_size=fleet_size, models=models,
                                    seed_shift=seed_shift, history_s=history_days * 86400.0,
                                    slower=slower, schedule=schedule)
    except (ScenarioError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    history = f", {history_days:g} d of history before the faults" if history_days else ""
    pace = f", faults {slower:g}x slower" if slower != 1.0 else ""
    shifts = f", every machine on {schedule}" if schedule else ""
    print(f"{len(paths)} scenario(s){'' if models else ', no equipment profiles'}{history}"
          f"{pace}{shifts}")
    print(evaluate.format_table(result))
    return 0


def main(argv: list[str]) -> int:
    """Run a benchmark command; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "scenarios":
        return _scenarios(args.scenario, args.days, args.fleet_size, not args.no_models,
                          args.seed_shift, args.history_days, args.slower, args.schedule)
    if args.command == "crossval":
        return _crossval(args.nab, args.skab, args.select)
    data: Path = args.data
    if not data.is_dir():
        print(f"--data {data}: not a directory", file=sys.stderr)
        return 2
    try:
        if args.command == "nab":
            result = nab.run(data, args.out)
            print(f"{result.files} files scored, results in {args.out / nab.DETECTOR}")
            for name, sc in result.scores.items():
                print(f"NAB {name}: {sc.normalised:.1f} (threshold {sc.threshold:.2f})")
            if not result.scores:
                print("no labels/combined_windows.json found: results written, not scored")
            return 0
        paths = skab.skab_files(data)
        if not paths:
            print(f"--data {data}: no labelled SKAB CSVs found", file=sys.stderr)
            return 2
        c = skab.run(paths, out=args.out, root=data)
        print(f"{len(paths)} files, TP {c.tp} FP {c.fp} TN {c.tn} FN {c.fn}")
        print(f"F1 {c.f1:.3f}  FAR {c.far:.2f} %  MAR {c.mar:.2f} %")
        return 0
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
