"""The launcher: ``mpiexec -n 4 python -m dl.distribution train.py [args]``.

Runs an unchanged training script on every process of an MPI job with
``set_distribution(DataParallel(...))`` in force, so its ``fit``, ``evaluate`` and
``predict`` calls are data-parallel (``batch_size`` is then the global batch).  An
uncaught exception (or a non-zero ``sys.exit``) on any rank prints that rank's
traceback and aborts the whole job with a non-zero status, rather than leaving the
other ranks waiting.  Options (before the script):

  --reduction {sum,ordered}   DataParallel's reduction (default: sum)
  --timeout SECONDS           abort the job when a collective waits longer
  -m MODULE                   run a module (as python -m) instead of a script

Everything after the script (or the module's name) is the script's own arguments.
"""
import argparse
import runpy
import sys
import traceback

from . import DataParallel, set_distribution


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m dl.distribution",
        usage="python -m dl.distribution [-h] [--reduction {sum,ordered}] "
              "[--timeout SECONDS] (script.py | -m module) [args ...]",
        description=__doc__.split("\n\n")[0],
        epilog="Several machines: mpiexec -hosts a,b -ppn 1 -n 2 python -m "
               "dl.distribution train.py (MPICH); Open MPI: mpirun -n 2 "
               "[--allow-run-as-root] ...; Slurm: srun -n 4 python -m dl.distribution "
               "train.py.  See docs/distributed.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reduction", choices=("sum", "ordered"), default="sum",
                        help="how gradients are summed: MPI's Allreduce (sum), or in "
                             "rank order, bit-identical to simulate=N (ordered)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="abort the job when a collective waits longer than this")
    return parser


def _split(argv):
    """``(the launcher's options, ("script" | "module", name) or None, the rest)``:
    everything after the script or ``-m module`` is theirs, options included."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-m":
            name = argv[i + 1] if i + 1 < len(argv) else None
            return argv[:i], ("module", name), argv[i + 2:]
        if arg in ("--reduction", "--timeout"):
            i += 2
        elif arg.startswith("-"):
            i += 1           # --help, --timeout=5...; an unknown one: argparse says so
        else:
            return argv[:i], ("script", arg), argv[i + 1:]
    return argv, None, []


def main(argv=None):
    parser = _parser()
    own, target, rest = _split(sys.argv[1:] if argv is None else list(argv))
    opts = parser.parse_args(own)
    if target is None or target[1] is None:
        parser.error("expected a script to run (or -m module)")
    if opts.timeout is not None and not opts.timeout > 0:
        parser.error(f"--timeout: expected a positive number of seconds, got {opts.timeout}")
    dist = DataParallel(reduction=opts.reduction, timeout=opts.timeout)
    set_distribution(dist)
    comm = dist.comm
    kind, name = target
    sys.argv = [name] + rest
    if kind == "module":
        run = lambda: runpy.run_module(name, run_name="__main__", alter_sys=True)
    else:
        run = lambda: runpy.run_path(name, run_name="__main__")
    try:
        run()
    except SystemExit as exc:
        code = exc.code
        if code is None or code == 0:
            return 0
        if dist.num_processes > 1:
            sys.stderr.write(f"[rank {dist.process_id} of {dist.num_processes}] the script "
                             f"exited with status {code!r}; aborting the job\n")
            comm.abort(code if isinstance(code, int) else 1)
        raise
    except BaseException:         # noqa: BLE001 -- any error: this rank's traceback, then
        if dist.num_processes <= 1:   # the whole job ends (no rank left waiting)
            raise
        sys.stderr.write(f"[rank {dist.process_id} of {dist.num_processes}] uncaught "
                         f"exception; aborting the job\n")
        traceback.print_exc()
        comm.abort(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
