"""The ``pdenet`` command line (PRODUCT.md section 3).

Every error ends the command with one line on stderr naming the file, key
and reason, and a non-zero exit status: 2 for invalid input, 1 for a failed
computation, 130 for an interrupt.
"""
import argparse
import os
import signal
import sys

from . import __version__

EXIT_INPUT, EXIT_FAILED, EXIT_INTERRUPT = 2, 1, 130


def _add_set(p):
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a case key, e.g. --set time.steps=64 (repeatable)")


def build_parser():
    parser = argparse.ArgumentParser(prog="pdenet", description="PDE and optimal-control theory of deep "
                                     "learning: run case files, inspect and plot HDF5 results.")
    parser.add_argument("--version", action="version", version=f"pdenet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    petsc_epilog = ("PETSc options (backend = \"petsc\"): append --petsc followed by PETSc's own options, "
                    "e.g. --petsc -ksp_type bcgs -pc_type gamg -ksp_monitor; they override the case "
                    "file's [solver] petsc_options.")
    p = sub.add_parser("run", help="solve a case and write its HDF5 file", epilog=petsc_epilog)
    p.add_argument("case", nargs="?", help="case file (TOML)")
    p.add_argument("-o", "--output", help="output HDF5 file (default: [output] path or <name>.h5)")
    p.add_argument("--resume", metavar="OUT.h5", help="continue the time integration of this file (interrupted, "
                   "failed or, with a longer time.t_end/time.steps, complete) from its last save")
    p.add_argument("--force", action="store_true",
                   help="replace an existing output even if it is not a pdenet HDF5 file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also report wall time and numba kernels loaded from cache / compiled, and show "
                   "the messages of the 'pdenet' logger (INFO) on stderr")
    _add_set(p)

    p = sub.add_parser("validate", help="check a case file without running it")
    p.add_argument("case")
    _add_set(p)

    p = sub.add_parser("info", help="summarise an output file")
    p.add_argument("file")

    p = sub.add_parser("plot", help="plot fields and diagnostics of an output file (PNG)")
    p.add_argument("file")
    p.add_argument("-o", "--output", help="PNG path (default: <file>.png)")
    p.add_argument("--field", help="field to plot (default: the first)")
    p.add_argument("--sample", type=int, default=0, help="sample index for batched fields")
    p.add_argument("--no-diagnostics", action="store_true", help="leave out the diagnostics panel")

    p = sub.add_parser("converge", help="refinement study: errors and observed orders")
    p.add_argument("case")
    p.add_argument("--key", required=True, help="mesh.cells | time.steps | time.dt")
    p.add_argument("--values", required=True, help="comma-separated, coarse to fine, e.g. 8,16,32,64")
    p.add_argument("--field", help="field to measure (default: the first saved)")
    p.add_argument("--norm", default="l2", choices=["l2", "max"])
    p.add_argument("-o", "--output", help="HDF5 file for /convergence (default <name>_converge.h5)")
    p.add_argument("--plot", help="PNG of the study (default <output>.png)")
    p.add_argument("-q", "--quiet", action="store_true")
    _add_set(p)

    p = sub.add_parser("sweep", help="run a case over a grid of key values (spread over the ranks "
                       "under mpiexec -n P); writes one file per case and summary.h5", epilog=petsc_epilog)
    p.add_argument("case")
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2,...",
                   help="values of one key, e.g. --grid model.diffusion=0.1,0.5 (repeatable: the "
                   "Cartesian product is run; bracketed lists stay whole: mesh.cells=[50],[100])")
    p.add_argument("-o", "--output-dir", help="folder of the runs and summary.h5 (default <name>_sweep)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or table")
    _add_set(p)

    p = sub.add_parser("schema", help="the case schema as JSON Schema (for editor completion of case files)")
    p.add_argument("model", nargs="?", help="one model's schema (default: every model, chosen by [case] model)")
    p.add_argument("-o", "--output", help="write it to this file (default: standard output)")

    p = sub.add_parser("bench", help="benchmarks with ratios against peers measured in the same run")
    from .bench import SUITES

    p.add_argument("suite", nargs="?", default="network", choices=list(SUITES))
    p.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    p.add_argument("--threads", type=int, default=None, help="threads per contender for BLAS, numba and PyTorch (default: 1, a single core)")
    p.add_argument("--repeat", type=int, default=5)
    return parser


def cmd_run(args):
    import time

    from .errors import CaseError

    from .runner import run

    from .parallel import world

    if args.verbose:
        from .log import verbose

        verbose()
    start = time.perf_counter()
    comm = world()
    if args.resume is not None or args.case is None:
        from .restart import resume

        if args.resume is None or args.case is not None:
            raise CaseError("give a case file, or --resume OUT.h5 without one", key="pdenet run")
        result = resume(args.resume, output=args.output, overrides=args.overrides, quiet=args.quiet, comm=comm,
                        force=args.force)
    else:
        result = run(args.case, output=args.output, overrides=args.overrides, quiet=args.quiet, comm=comm,
                     force=args.force)
    if comm.Get_rank() != 0:
        return 0
    if not args.quiet:
        extra = "  ".join(f"{k} {result.attrs[k]:.6g}" for k in ("loss", "gradient_norm", "accuracy")
                          if k in result.attrs)
        print(f"wrote {result.path}  ({len(result.time)} saves)  {extra}")
    if args.verbose:
        from .network.activations import compile_stats, kernels
        from .fokkerplanck import kernels as fp_kernels
        from .hj.kernels import dispatchers as hj_kernels
        from .network.reduced.hjb import kernels as reduced_hjb_kernels

        hits, compiled = compile_stats(kernels() + fp_kernels() + hj_kernels() + reduced_hjb_kernels())
        print(f"wall time {time.perf_counter() - start:.3f} s; numba kernels: {hits} loaded from cache, "
              f"{compiled} compiled")
    return 0


def cmd_validate(args):
    from .runner import validate

    model = validate(args.case, args.overrides)  # the validation phase of `pdenet run`, alone
    case, m = model.case, model.mesh
    timing = ""
    if case.get("time.steps") is not None:
        timing = f"  steps {case['time.steps']}  dt {case['time.dt']:.6g}"
    print(f"{case.source}: ok  model {case.model}  mesh {list(m.cells)}{timing}")
    return 0


class _Reading:
    """Maps what a damaged output file raises while it is read (h5py's RuntimeError/OSError on a
    corrupt header or attribute, a TypeError/ValueError/UnicodeError from an attribute of the wrong
    type) to a one-line :class:`~pdenet.errors.OutputError` naming the file."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        from .errors import OutputError, PdenetError, one_line

        if exc is None or isinstance(exc, PdenetError) or not isinstance(exc, Exception):
            return False
        if isinstance(exc, (OSError, RuntimeError, ValueError, TypeError, KeyError, IndexError,
                            AttributeError, UnicodeError)):
            raise OutputError(one_line(f"{self.path}: damaged or not a pdenet output file "
                                       f"({type(exc).__name__}: {exc})")) from None
        return False


def cmd_info(args):
    from .errors import one_line
    from .io import open_result

    with _Reading(args.file):
        summary = open_result(args.file).summary()
    # an attribute of a damaged file may hold any bytes: print them escaped, not raw
    print("\n".join(one_line(line) for line in summary.splitlines()))
    return 0


def cmd_plot(args):
    from .errors import OutputError, one_line
    from .io import open_result
    from .plot import check_image_path, plot_file

    out = args.output or os.path.splitext(args.file)[0] + ".png"
    check_image_path(out)
    with _Reading(args.file):
        result = open_result(args.file)
    try:
        plot_file(result, out, field=args.field, sample=args.sample, diagnostics=not args.no_diagnostics)
    except (KeyError, IndexError) as exc:
        raise OutputError(f"{args.file}: {exc.args[0] if exc.args else exc}") from None
    except (TypeError, ValueError, RuntimeError) as exc:  # an attribute of a damaged file
        raise OutputError(one_line(f"{args.file}: cannot plot ({type(exc).__name__}: {exc})")) from None
    print(f"wrote {out}")
    return 0


def cmd_converge(args):
    from .case import load_case
    from .converge import converge, table, write_study

    case = load_case(args.case, args.overrides)
    values = [v.strip() for v in args.values.split(",") if v.strip()]
    if args.plot:
        from .plot import check_image_path

        check_image_path(args.plot)
    study = converge(case, args.key, values, field=args.field, norm=args.norm, quiet=args.quiet)
    print(table(study))
    out = args.output or f"{case.name}_converge.h5"
    plot = args.plot or os.path.splitext(out)[0] + ".png"
    write_study(study, out, plot)
    print(f"wrote {out} and {plot}")
    return 0


def cmd_sweep(args):
    from .errors import CaseError, PdenetError
    from .parallel import world
    from .sweep import sweep, table

    comm = world()
    try:
        records, summary = sweep(args.case, args.grid, args.output_dir, args.overrides, args.quiet, comm)
    except PdenetError as exc:
        if comm.Get_rank() != 0:  # every rank hits the same input error; rank 0 reports it
            return EXIT_INPUT if isinstance(exc, CaseError) else EXIT_FAILED
        raise
    code = 0
    if comm.Get_rank() == 0:
        if not args.quiet:
            print(table(records, [g.split("=", 1)[0].strip() for g in args.grid]))
            print(f"wrote {summary}")
        statuses = {r["status"] for r in records}
        code = EXIT_INTERRUPT if "interrupted" in statuses else EXIT_FAILED if statuses - {"complete"} else 0
    return comm.bcast(code, root=0)


def cmd_bench(args):
    from .bench import main as bench_main

    return bench_main(args)


def cmd_schema(args):
    import json

    from .case import json_schema

    text = json.dumps(json_schema(args.model), indent=1) + "\n"
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


COMMANDS = {"schema": cmd_schema, "run": cmd_run, "validate": cmd_validate, "info": cmd_info, "plot": cmd_plot,
            "converge": cmd_converge, "sweep": cmd_sweep, "bench": cmd_bench}


def _split_petsc(argv):
    """``... --petsc -ksp_type cg -pc_type gamg``: everything after ``--petsc`` goes to PETSc
    (after the case file's ``[solver] petsc_options``, so it wins)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--petsc" not in argv:
        return argv, []
    i = argv.index("--petsc")
    return argv[:i], argv[i + 1:]


def main(argv=None):
    code = _main(argv)
    from .parallel import launched_size

    if code not in (0, None) and launched_size() > 1 and getattr(_main, "abort", False):
        # an error that other ranks may not share: stop them rather than leave them waiting
        from .parallel import world

        sys.stderr.flush()
        world().Abort(code)
    return code


def _main(argv=None):
    from .errors import CaseError, ExpressionError, Interrupted, PdenetError

    argv, petsc_args = _split_petsc(argv)
    args = build_parser().parse_args(argv)
    _main.abort = args.command == "run"
    try:
        if args.command == "run" and args.case is not None:
            from .io.lock import refuse_if_locked

            # a target another run holds is refused at once, before numpy, h5py, numba and the
            # model are imported (the sink's own lock, taken later, is what guarantees it)
            refuse_if_locked(args.case, args.output, args.overrides)
        if petsc_args:
            from solvers.petsc_backend import set_command_line_options

            set_command_line_options(petsc_args)
        from .runner import _Interrupts

        _Interrupts.after_interrupt = signal.SIG_IGN   # a second Ctrl-C while reporting the first
        return COMMANDS[args.command](args)
    except Interrupted as exc:
        print(f"pdenet: {exc}", file=sys.stderr)
        return EXIT_INTERRUPT
    except KeyboardInterrupt:
        print("pdenet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPT
    except (CaseError, ExpressionError) as exc:
        _main.abort = False  # found by every rank alike, before any collective call
        if _rank() == 0:
            print(f"pdenet: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except PdenetError as exc:
        print(f"pdenet: error: {_where()}{exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # disk full, permissions, ...
        print(f"pdenet: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED


def _rank():
    from .parallel import launched_size

    if launched_size() <= 1:
        return 0
    from .parallel import world

    try:
        return world().Get_rank()
    except Exception:
        return 0


def _where():
    from .parallel import launched_size

    return f"(rank {_rank()}) " if launched_size() > 1 else ""


if __name__ == "__main__":
    sys.exit(main())
