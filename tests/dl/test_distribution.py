"""Data-parallel training (dl.distribution): N processes give the numbers of one.

The multi-process cases launch ``mpiexec -n 2`` / ``-n 3`` (MPICH's, from the [mpi]
extra, which [test] includes) on tests/dl/mpi_worker.py through the launcher ``python
-m dl.distribution``, each in a subprocess with a time limit, one kernel thread per
rank (2 cores).  They check:

- ``reduction="ordered"``: every rank's weights, logs, evaluate and predict are
  bit-identical to ``DataParallel(simulate=N)`` in this process (BatchNormalization
  too), and, float64, within rtol 1e-12 of plain one-process ``fit`` after 110 steps
  (Dropout included: masks are drawn for the global batch);
- ``reduction="sum"``: the same bits run to run; float32 within 1e-3 of one process;
- the numpy backend, and the cuda backend under Numba's simulator (2 ranks);
- a stop asked for by one rank's callback stops every rank at the same step, and so
  does TerminateOnNaN (the last finite weights kept);
- bad data on one rank raises the same error, naming it, on every rank;
- files are written by rank 0 alone;
- a raising, a killed and a stalled rank end the job (non-zero status, no hang);
- a backup written by 2 processes resumes on 3 and lands where one process does.
"""
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import dl
from dl.distribution import DataParallel
from dl.distribution._replicas import bounds

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER_PATH = os.path.join(HERE, "mpi_worker.py")
_spec = importlib.util.spec_from_file_location("mpi_worker", WORKER_PATH)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)


def _mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or _mpiexec() is None,
    reason="mpi4py and mpiexec (pip install '.[mpi]') are not installed")


@pytest.fixture(autouse=True)
def _floatx():
    yield
    dl.config.set_floatx("float32")
    dl.distribution.set_distribution(None)


def launch(n, scenario, out_dir, *args, reduction=None, timeout=None, limit=60,
           threads="1"):
    """Run the worker on ``n`` processes (``threads`` kernel threads each, None: the
    launcher's choice): ``(exit status, output, seconds)``."""
    cmd = [_mpiexec(), "-n", str(n), sys.executable, "-m", "dl.distribution"]
    if reduction:
        cmd += ["--reduction", reduction]
    if timeout:
        cmd += ["--timeout", str(timeout)]
    cmd += [WORKER_PATH, scenario, str(out_dir), *args]
    env = {k: v for k, v in os.environ.items()
           if k not in ("DLKERNELS_NUM_THREADS", "OMP_NUM_THREADS")}
    if threads is not None:
        env["DLKERNELS_NUM_THREADS"] = threads
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"mpiexec -n {n} {scenario} hung for {limit} s:\n{output[-3000:]}")
    return proc.returncode, output, time.monotonic() - start


def ranks(out_dir, name, n):
    """Every rank's saved results, checked equal across the ranks."""
    found = [dict(np.load(os.path.join(out_dir, f"{name}-rank{r}.npz"))) for r in range(n)]
    for r in range(1, n):
        assert found[r].keys() == found[0].keys()
        for key in found[0]:
            np.testing.assert_array_equal(found[r][key], found[0][key],
                                          err_msg=f"rank {r} differs from rank 0: {key}")
    return found[0]


def local(dist=None, **kwargs):
    """The worker's run in this process (under ``dist``), as results."""
    x, y = worker.data(kwargs.get("dtype", "float64"))
    if dist is None:
        model, history = worker.train(**kwargs)
        return worker.results(model, history, x, y)
    with dist.scope():
        model, history = worker.train(**kwargs)
        return worker.results(model, history, x, y)


def assert_same_bits(got, want):
    """The training (weights, optimizer steps) to the bit; the logs and evaluate
    (sums kept per rank, added at the end) and predict (other batches: NumPy's BLAS
    rounds a row by its batch) to rounding."""
    assert got.keys() - {"again"} == want.keys()
    for key in want:
        if key.startswith("h_") or key in ("evaluate", "predict", "train_on_batch",
                                           "test_on_batch"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-14, err_msg=key)
        else:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def assert_close(got, want, rtol):
    weights = [k for k in want if k[0] == "w" and k[1:].isdigit()]
    assert weights and {k for k in got if k[0] == "w" and k[1:].isdigit()} == set(weights)
    for key in weights + ["evaluate", "predict", "train_on_batch", "test_on_batch",
                          "w0_after_batch"]:
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=0, err_msg=key)
    for key in want:
        if key.startswith("h_"):
            assert got[key].shape == want[key].shape, key
    assert int(got["iterations"]) == int(want["iterations"])


# ------------------------------------------------------------ several processes
@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_ordered_reduction_is_bit_identical_to_simulate(tmp_path, n):
    code, output, _ = launch(n, "train", tmp_path, "float64", reduction="ordered")
    assert code == 0, output
    got = ranks(tmp_path, "train-float64-cython", n)
    assert_same_bits(got, local(DataParallel(simulate=n)))
    # and within rtol 1e-12 of one process at the same global batch (110 steps)
    plain = local()
    assert int(plain["iterations"]) == 110
    assert_close(got, plain, rtol=1e-12)
    # BatchNormalization: per-rank batch statistics (as simulate), moving ones averaged
    bn = ranks(tmp_path, "bn-float64-cython", n)
    assert_same_bits(bn, local(DataParallel(simulate=n), batch_norm=True, epochs=3))


@needs_mpi
def test_sum_reduction_is_reproducible_and_float32_within_1e_3(tmp_path):
    code, output, _ = launch(3, "train", tmp_path, "float32")
    assert code == 0, output
    got = ranks(tmp_path, "train-float32-cython", 3)
    again = got["again"]
    weights = sorted((k for k in got if k[0] == "w" and k[1:].isdigit()),
                     key=lambda k: int(k[1:]))
    np.testing.assert_array_equal(again, np.concatenate([got[k].ravel() for k in weights]))
    plain = local(dtype="float32")
    assert {k for k in got if k.startswith("h_")} == {k for k in plain if k.startswith("h_")}
    for key in ("h_loss", "h_accuracy"):
        assert got[key].shape == plain[key].shape == (worker.EPOCHS,)
        np.testing.assert_allclose(got[key][-1], plain[key][-1], rtol=1e-3)
    np.testing.assert_allclose(got["evaluate"], plain["evaluate"], rtol=1e-3)


@needs_mpi
def test_numpy_backend(tmp_path):
    code, output, _ = launch(2, "train", tmp_path, "float64", "numpy", reduction="ordered")
    assert code == 0, output
    got = ranks(tmp_path, "train-float64-numpy", 2)
    assert_same_bits(got, local(DataParallel(simulate=2), backend="numpy"))
    assert_close(got, local(backend="numpy"), rtol=1e-12)


@needs_mpi
def test_cuda_backend_two_ranks(tmp_path):
    try:
        dl.config.get_backend("cuda")
    except ImportError as exc:
        pytest.skip(f"the cuda backend does not load here: {exc}")
    code, output, _ = launch(2, "cuda", tmp_path, "float64", reduction="ordered",
                             limit=120)
    assert code == 0, output
    got = ranks(tmp_path, "cuda", 2)
    assert str(got.pop("gpu")) == "0"      # local rank % the simulator's one device
    x, y = worker.data()

    def run(dist):
        with (dist.scope() if dist else dl.distribution.DataParallel(simulate=1).scope()):
            model = worker.build("float64", "cuda")
            history = model.fit(x[:40], y[:40], batch_size=worker.BATCH, epochs=1,
                                verbose=0)
            return worker.results(model, history, x[:40], y[:40])
    assert_same_bits(got, run(DataParallel(simulate=2)))
    assert_close(got, run(None), rtol=1e-12)


@needs_mpi
def test_a_stop_on_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    code, output, _ = launch(2, "stop", tmp_path)
    assert code == 0, output
    got = ranks(tmp_path, "stop", 2)
    plain = local(callbacks=[worker.StopAt(1, 4)])
    assert int(plain["iterations"]) == 11 + 5
    assert_close(got, plain, rtol=1e-12)
    assert got["h_loss"].shape == (2,)


@needs_mpi
def test_functional_model_with_two_inputs_and_outputs(tmp_path):
    code, output, _ = launch(3, "functional", tmp_path)
    assert code == 0, output
    got = ranks(tmp_path, "functional", 3)
    plain = worker.functional_run()
    assert got.keys() == plain.keys() and "h_val_cls_accuracy" in plain
    for key in plain:
        np.testing.assert_allclose(got[key], plain[key], rtol=1e-12, atol=1e-15,
                                   err_msg=key)


@needs_mpi
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_terminate_on_nan_stops_every_rank_with_the_last_finite_weights(tmp_path):
    code, output, _ = launch(2, "nan", tmp_path)
    assert code == 0, output
    got = ranks(tmp_path, "nan", 2)
    x, y = worker.data()
    model, history = worker.nan_run()
    plain = worker.results(model, history, x, y)
    assert int(plain["iterations"]) == 2 and np.isnan(plain["h_loss"][-1])
    assert_close(got, plain, rtol=1e-12)


@needs_mpi
def test_bad_data_on_one_rank_raises_the_same_error_on_every_rank(tmp_path):
    code, output, _ = launch(2, "badrow", tmp_path, threads=None)
    assert code == 0, output
    got = ranks(tmp_path, "badrow", 2)       # equal on both ranks
    assert str(got["message"]) == ("rank 1 of 2: x: expected finite values, got NaN or "
                                   "inf in row 7")
    # and each rank ran the node's cores / 2 kernel threads (no thread variable set)
    import kernels.comm
    share = max(1, kernels.comm.local_cores() // 2)
    np.testing.assert_array_equal(got["threads"], [share, share])


@needs_mpi
def test_files_are_written_by_rank_0_alone(tmp_path):
    code, output, _ = launch(2, "files", tmp_path)
    assert code == 0, output
    written = np.load(os.path.join(tmp_path, "files-rank1.npz"))["written"]
    assert written.size == 0, written
    folder = os.path.join(tmp_path, "files")
    assert sorted(os.listdir(folder)) == ["backup", "ckpt-1.dlk", "ckpt-2.dlk", "ckpt-3.dlk",
                                          "final.dlk", "log.csv"]
    with open(os.path.join(folder, "log.csv")) as f:
        assert len(f.read().splitlines()) == 1 + 3
    assert dl.load_model(os.path.join(folder, "final.dlk")).count_params() > 0


@needs_mpi
@pytest.mark.parametrize("scenario, timeout, expected", [
    # an exception: its traceback, and the job aborted
    ("raise", None, ["ZeroDivisionError: rank 1 fails on purpose",
                     "[rank 1 of 2] uncaught exception; aborting the job"]),
    # SIGKILL: MPICH's mpiexec ends the job
    ("kill", 5, []),
    # a rank sleeping in a callback: the others' watchdog, naming the step
    ("stall", 1, ["a collective waited more than 1 s (fit, step 5)"]),
])
def test_a_failing_rank_ends_the_job(tmp_path, scenario, timeout, expected):
    code, output, seconds = launch(2, scenario, tmp_path, timeout=timeout)
    assert code != 0, output
    for text in expected:
        assert text in output, output
    assert "finished" not in output
    assert seconds < 20


@needs_mpi
def test_a_backup_of_2_processes_resumes_on_3(tmp_path):
    code, output, _ = launch(2, "resume-first", tmp_path)
    assert code != 0 and "interrupted on purpose" in output, output
    assert os.path.exists(os.path.join(tmp_path, "resume-backup", "latest.dlk"))
    code, output, _ = launch(3, "resume-second", tmp_path)
    assert code == 0, output
    got = ranks(tmp_path, "resume-second", 3)
    plain = local()
    for key in [k for k in plain if k[0] == "w" and k[1:].isdigit()] + ["predict"]:
        np.testing.assert_allclose(got[key], plain[key], rtol=1e-12, atol=0, err_msg=key)
    assert int(got["iterations"]) == int(plain["iterations"])
    # the resumed epochs' logs: the last ones of the uninterrupted run
    np.testing.assert_allclose(got["h_loss"], plain["h_loss"][-got["h_loss"].size:],
                               rtol=1e-12)


# --------------------------------------------------------------- one process
def test_simulate_1_is_plain_fit_bit_for_bit():
    plain = local(batch_norm=True)
    assert_same_bits(local(DataParallel(simulate=1), batch_norm=True), plain)


@pytest.mark.parametrize("n", [4, 25])
def test_more_slices_than_rows_in_the_last_batch(n):
    # 203 rows at batch 20: the last batch has 3 rows, so slices 3.. are empty
    assert_close(local(DataParallel(simulate=n)), local(), rtol=1e-12)


def test_bounds_cut_rows_into_contiguous_slices():
    for rows in (1, 3, 20, 203):
        for parts in (1, 2, 3, 7, 25):
            cut = [bounds(rows, parts, i) for i in range(parts)]
            assert cut[0][0] == 0 and cut[-1][1] == rows
            assert all(a[1] == b[0] for a, b in zip(cut, cut[1:]))
            sizes = [hi - lo for lo, hi in cut]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
def test_each_rank_gathers_its_rows_of_the_global_batch(backend):
    # numpy: gathered on the host; cuda with host data: streamed through pinned buffers
    from dl.epoch_iterator import EpochIterator
    try:
        ops = dl.config.get_backend(backend).ops
    except ImportError as exc:
        pytest.skip(f"the {backend} backend does not load here: {exc}")
    rng = np.random.default_rng(1)
    x, y, w = rng.random((23, 3)), rng.integers(0, 4, 23), rng.random(23)

    def epoch(part):
        it = EpochIterator(x, y, w, 10, ops, True, 5, part)
        return [tuple(np.array(ops.to_host(a), copy=True) for a in batch[1:])
                for batch in it.batches(epoch=2)]
    whole = epoch(None)
    assert [b[0].shape[0] for b in whole] == [10, 10, 3]
    for parts in (2, 3, 4):
        for rank in range(parts):
            for full, mine in zip(whole, epoch((rank, parts))):
                lo, hi = bounds(full[0].shape[0], parts, rank)
                for a, b in zip(full, mine):
                    np.testing.assert_array_equal(b[lo:hi], a[lo:hi])


@pytest.mark.parametrize("noise_shape", [None, (None, 1), (1, None), (10, 7)])
def test_dropout_masks_are_rows_of_the_global_batch_mask(noise_shape):
    layer = dl.layers.Dropout(0.5, noise_shape=noise_shape, seed=3)
    layer._build((7,), dl.get_backend("numpy"), np.dtype("float64"))
    x = np.ones((10, 7))
    whole = layer.forward(x, training=True, step=4).copy()
    assert 0 < np.count_nonzero(whole) < whole.size
    for lo, hi in [(0, 4), (4, 7), (7, 10), (3, 4)]:
        layer._batch_part = (lo, 10)
        np.testing.assert_array_equal(layer.forward(x[lo:hi], training=True, step=4),
                                      whole[lo:hi])
    layer._batch_part = None


def test_dataparallel_arguments_are_checked():
    with pytest.raises(ValueError, match="reduction: expected 'sum' or 'ordered', got 'mean'"):
        DataParallel(reduction="mean")
    with pytest.raises(ValueError, match="simulate: expected None or an int >= 1, got 0"):
        DataParallel(simulate=0)
    with pytest.raises(ValueError, match="timeout: expected None or a positive number"):
        DataParallel(timeout=-1)
    with pytest.raises(ValueError, match="devices: expected None or a list of 1 devices"):
        DataParallel(devices=["cpu:0", "cpu:1"])
    with pytest.raises(TypeError, match="value: expected a dl.distribution.DataParallel"):
        dl.distribution.set_distribution("data")
    with pytest.raises(ValueError, match=r"reduction: expected 'sum' or 'ordered', got \['sum'\]"):
        DataParallel(reduction=["sum"])
    # NumPy numbers are numbers
    assert DataParallel(simulate=np.int64(2), timeout=np.float32(1.5)).num_replicas == 2


def test_scope_restores_the_previous_distribution():
    outer, inner = DataParallel(simulate=2), DataParallel(simulate=3)
    dl.distribution.set_distribution(outer)
    with inner.scope() as d:
        assert d is inner and dl.distribution.distribution() is inner
    assert dl.distribution.distribution() is outer
    assert dl.distribution.list_devices() == ["cpu:0"]
    assert dl.distribution.process_rank() == 0 and dl.distribution.writes_files()


def test_simulate_does_not_load_mpi4py_and_the_launcher_explains_itself():
    code = ("import sys, dl, numpy as np\n"
            "with dl.distribution.DataParallel(simulate=2).scope():\n"
            "    m = dl.Sequential([dl.layers.Dense(1, input_shape=(2,))])\n"
            "    m.compile(optimizer='sgd', loss='mse')\n"
            "    m.fit(np.ones((4, 2)), np.ones(4), epochs=2, verbose=0)\n"
            "print('mpi4py' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "OMPI_", "PMIX_", "MPI_LOCAL"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    helped = subprocess.run([sys.executable, "-m", "dl.distribution", "--help"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert helped.returncode == 0 and "mpiexec -n 4 python -m dl.distribution" in helped.stdout
    bare = subprocess.run([sys.executable, "-m", "dl.distribution"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert bare.returncode == 2 and "expected a script to run" in bare.stderr
    # one process: a module as python -m runs it, its arguments passed on
    module = subprocess.run([sys.executable, "-m", "dl.distribution", "-m", "timeit", "-n",
                             "1", "-r", "1", "pass"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert module.returncode == 0 and "1 loop" in module.stdout, module.stderr


def test_the_launcher_passes_a_scripts_exit_status_on_one_process(tmp_path):
    script = tmp_path / "exits.py"
    script.write_text("import sys\nprint(sys.argv[1:])\nsys.exit(3)\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "OMPI_", "PMIX_", "MPI_LOCAL"))}
    out = subprocess.run([sys.executable, "-m", "dl.distribution", str(script), "a", "-b"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 3 and out.stdout.strip() == "['a', '-b']", out.stderr
