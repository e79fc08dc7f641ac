"""Where a recipe's variants run: in the run's own process (the default) or as Ray tasks.

The default is unchanged behaviour: :func:`compression.run.recipe.run_recipe` runs the
variants one after another in the process that runs the recipe (the runner's worker
process, or the CLI). When ``COMPRESSION_LAB_RAY_ADDRESS`` is set (or the CLI gets
``--ray ADDRESS``) each variant becomes one Ray task instead:

* ``local`` starts a Ray instance inside the run's process with this machine's CPUs
  (loopback only, no dashboard); ``auto`` or ``ray://host:10001`` joins a running cluster.
* The baseline is prepared once by the driver (trained, loaded or uploaded, as locally)
  and shared through Ray's **object store**: the saved ``baseline.keras`` bytes, the
  dataset arrays and the baseline's test predictions are ``ray.put`` once and every task
  reads them from its node's store. The object store rather than a shared path because a
  cluster's nodes need not share a file system with the app (KubeRay pods do not), an
  uploaded model or ``.npz`` dataset exists only on the app's machine, and Ray copies each
  object to a node once, however many tasks run there.
* A task reserves ``num_cpus`` (``COMPRESSION_LAB_RAY_CPUS``, default 1, at least the
  recipe's ``evaluation.threads``), matches TensorFlow's intra-op threads to it (Ray sets
  ``OMP_NUM_THREADS`` to the same number), imports TensorFlow inside the task, builds,
  converts and measures the variant in a temporary folder and returns its row and its
  files (``.tflite``, kernels, predictions). The driver writes them into the run folder
  and results.json as each task finishes, so the store and the pages see what a local run
  writes. A worker process is replaced after :data:`MAX_CALLS` tasks: TFLiteConverter
  leaks memory with every conversion (TF 2.21), so the leak is bounded to that many
  variants' conversions per process.
* Faults: a task whose process dies (``os._exit``, SIGSEGV, the OOM killer) or whose node
  dies marks that variant failed with the reason; the others finish. Tasks are not
  retried (``max_retries=0``): a variant that crashed a converter crashes it again.
  Cancel force-cancels the outstanding tasks (``ray.cancel(force=True)``). Every wait has
  a timeout, so a lost connection fails the run with a sentence instead of hanging.

Ray is an optional extra (``requirements-ray.txt``): nothing here imports it until a Ray
executor connects, and the app and the engine run without it.

Usage::

    with RayExecutor("local") as ex:
        run_recipe(recipe, "out/", executor=ex)
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import Recipe, VariantSpec
from ..errors import CompressionError, one_line
from ..progress import Cancelled
from .variant import VariantOutcome

__all__ = [
    "CPUS_ENV",
    "MAX_CALLS",
    "RAY_ADDRESS_ENV",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "describe_setting",
    "executor_from_environment",
    "make_executor",
    "run_variant_task",
]

log = logging.getLogger("compression.run.executors")

RAY_ADDRESS_ENV = "COMPRESSION_LAB_RAY_ADDRESS"
CPUS_ENV = "COMPRESSION_LAB_RAY_CPUS"
MAX_CALLS = 4  # tasks per Ray worker process before Ray replaces it (bounds the converter's leak)
POLL_SECONDS = 0.5  # ray.wait timeout of one tick: cancel and connection are checked this often
HEALTH_SECONDS = 10.0  # how often the cluster's liveness is probed while tasks run
HEALTH_TIMEOUT_S = 15.0  # a probe unanswered this long means the connection is lost
GCS_RECONNECT_S = 600  # Ray aborts a driver that cannot reach its GCS for this long (Ray's default: 60 s)
CONNECT_TIMEOUT_S = 120.0


class Executor:
    """Runs a recipe's variants. The base class is the local default (in this process, in order)."""

    in_process = True

    def describe(self) -> str:
        """One line for the app and the CLI: where the variants run."""
        return "local: variants run one after another in the run's worker process on this machine"

    def close(self) -> None:
        """Release what the executor started (nothing for the local one)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class LocalExecutor(Executor):
    """The default: :func:`compression.run.recipe.run_recipe` runs its own variant loop, unchanged."""


# ---------------------------------------------------------------- choosing


def _address_from(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def describe_setting(address: str | None = None) -> str:
    """Describe the executor the environment (or ``address``) chooses, without importing Ray."""
    import importlib.util

    address = _address_from(address) or _address_from(os.environ.get(RAY_ADDRESS_ENV))
    if address is None:
        return Executor().describe() + f" (set {RAY_ADDRESS_ENV} to run them on Ray)"
    try:
        text = RayExecutor(address, connect=False).describe()
    except CompressionError as exc:
        return f"Ray, but the setting is invalid: {exc}"
    if importlib.util.find_spec("ray") is None:
        text += " — but Ray is not installed here, so runs will fail: pip install -r requirements-ray.txt"
    return text


def make_executor(address: str | None) -> Executor:
    """The executor for a ``--ray`` value or the environment's: Ray when given, else local.

    Raises:
        CompressionError: Ray is asked for but not installed, or a setting is invalid.
    """
    address = _address_from(address)
    if address is None:
        return LocalExecutor()
    return RayExecutor(address)


def executor_from_environment() -> Executor:
    """:func:`make_executor` of ``COMPRESSION_LAB_RAY_ADDRESS`` (local when it is unset)."""
    return make_executor(os.environ.get(RAY_ADDRESS_ENV))


def _cpus_from_environment() -> int:
    raw = os.environ.get(CPUS_ENV, "").strip()
    if not raw:
        return 1
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise CompressionError(f"{CPUS_ENV} must be a whole number of CPUs of at least 1. Received: {raw!r}")
    return value


# ---------------------------------------------------------------- the task


def _match_threads(cpus: int) -> dict[str, Any]:
    """TensorFlow's thread pools sized to the task's CPU reservation (Ray sets OMP_NUM_THREADS alike)."""
    os.environ["OMP_NUM_THREADS"] = str(cpus)
    from .. import _tf

    tf = _tf.tf()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # a reused worker: TF is initialised already, with the same reservation
        pass
    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            "omp": os.environ.get("OMP_NUM_THREADS")}


def run_variant_task(spec: dict, recipe: dict, baseline_keras: bytes, ds, reference_predictions,
                     cpus: int) -> dict[str, Any]:
    """The body of one Ray task: build, convert and measure one variant away from the run folder.

    Runs :func:`compression.run.recipe.run_variant` on the shared baseline in a temporary
    folder and returns its row and files; a :class:`CompressionError` or a bug becomes a
    failed row with the reason (only a dying process or node reaches the driver as a Ray error).
    """
    started = time.perf_counter()
    threads = _match_threads(cpus)
    from ..inputs.safe_load import load_user_model
    from ..results import file_stem
    from ..run_folder import RunFolder
    from ..techniques.train import compile_for_training
    from .baseline import RUN_BASELINE_MAX_BYTES
    from .stages import _StageCache
    from .variant import run_variant

    recipe_obj = Recipe.from_dict(recipe)
    spec_obj = VariantSpec(**spec)
    files: dict[str, bytes] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="compression-task-") as tmp:
            folder = RunFolder(Path(tmp) / "run")
            folder.path.mkdir()
            folder.baseline_model.write_bytes(baseline_keras)
            baseline = load_user_model(folder.baseline_model, max_bytes=RUN_BASELINE_MAX_BYTES)  # the run's own
            compile_for_training(baseline, recipe_obj.baseline.learning_rate)
            # Converted in this process, not in compression.isolation's child: the task's worker process is
            # the isolation (a converter crash fails this task), and a force-cancel leaves no orphan behind.
            row = run_variant(spec_obj, baseline, ds, recipe_obj, folder.path, reference_predictions,
                              _StageCache(isolate=False))
            row = row.to_dict() if hasattr(row, "to_dict") else dict(row)
            stem = file_stem(spec_obj.name)
            for kind, path in (("tflite", folder.tflite_for_stem(stem)), ("weights", folder.weights(stem)),
                               ("predictions", folder.predictions(stem))):
                if path.is_file():
                    files[kind] = path.read_bytes()
    except CompressionError as exc:
        row = {"name": spec_obj.name, "status": "failed", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a variant's bug fails that variant, as in a local run
        log.exception("variant %s failed", spec_obj.name)
        row = {"name": spec_obj.name, "status": "failed", "error": one_line(exc)}
    return {"row": row, "files": files, "seconds": round(time.perf_counter() - started, 3),
            "where": f"{_node_name()} pid {os.getpid()}", "threads": threads}


def _node_name() -> str:
    try:
        import ray

        return f"node {ray.get_runtime_context().get_node_id()[:12]}"
    except Exception:  # noqa: BLE001 - only a label
        return "?"


# ---------------------------------------------------------------- Ray


class RayExecutor(Executor):
    """Each variant a Ray task, on a local Ray instance or a cluster.

    Args:
        address: ``"local"`` (start Ray in this process with the machine's CPUs),
            ``"auto"`` (the cluster this machine belongs to) or ``"ray://host:10001"``.
        cpus_per_task: CPUs each variant reserves (default: ``COMPRESSION_LAB_RAY_CPUS`` or 1).
        max_calls: tasks a Ray worker process runs before it is replaced.
        task: the function a task runs (:func:`run_variant_task`; tests wrap it).
        connect: connect now (False only to describe the setting).

    Raises:
        CompressionError: Ray is not installed, the address cannot be reached, or a setting is invalid.
    """

    in_process = False

    def __init__(self, address: str = "local", cpus_per_task: int | None = None, max_calls: int = MAX_CALLS,
                 task: Callable[..., dict] | None = None, connect: bool = True,
                 connect_timeout: float = CONNECT_TIMEOUT_S):
        address = _address_from(address) or "local"
        if address not in ("local", "auto") and ":" not in address:
            raise CompressionError(
                f"The Ray address must be 'local', 'auto', 'ray://host:10001' or 'host:6379'. Received: {address!r}")
        self.address = address
        self.cpus_per_task = cpus_per_task if cpus_per_task is not None else _cpus_from_environment()
        if isinstance(self.cpus_per_task, bool) or not isinstance(self.cpus_per_task, int) or self.cpus_per_task < 1:
            raise CompressionError(f"cpus_per_task must be a whole number of at least 1. Received: {cpus_per_task!r}")
        self.max_calls = max_calls
        self.task = task or run_variant_task
        self.connect_timeout = connect_timeout
        self._started_ray = False
        self._remote = None
        self.lost = False
        if connect:
            self._connect()

    def __repr__(self) -> str:
        return f"RayExecutor({self.address!r}, cpus_per_task={self.cpus_per_task})"

    def describe(self) -> str:
        where = ("a Ray instance started on this machine" if self.address == "local"
                 else f"the Ray cluster at {self.address}")
        return f"Ray: each variant is a Ray task ({self.cpus_per_task} CPU each) on {where}"

    # ------------------------------------------------------------ connection

    def _connect(self) -> None:
        try:
            import ray
        except ImportError:
            raise CompressionError(
                f"Ray is asked for ({RAY_ADDRESS_ENV} or --ray is {self.address!r}) but it is not installed: "
                "pip install -r requirements-ray.txt.") from None
        if not ray.is_initialized():
            # Let our health probe (HEALTH_TIMEOUT_S) end a run whose cluster went away, with a sentence,
            # before Ray's core worker aborts the whole process.
            os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(GCS_RECONNECT_S))
            if self.address == "local":
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a loopback-only instance of our own
                kwargs: dict[str, Any] = {"num_cpus": os.cpu_count() or 1, "include_dashboard": False,
                                          "_node_ip_address": "127.0.0.1"}
            else:
                # Ship this package's code to the cluster: nodes need only the pip requirements, and run
                # exactly the driver's version of the engine (docs/ray.md).
                package = str(Path(__file__).resolve().parents[1])  # compression/
                kwargs = {"address": self.address,
                          "runtime_env": {"py_modules": [package], "excludes": ["__pycache__", "*.pyc"]}}
            try:
                ray.init(log_to_driver=False, logging_level=logging.ERROR, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every way of not connecting is one sentence
                raise CompressionError(f"Could not connect to Ray at {self.address!r}: {one_line(exc)}.") from None
            self._started_ray = True
        self._remote = ray.remote(max_retries=0, max_calls=self.max_calls)(self.task)

    def close(self) -> None:
        """Shut Ray down if this executor started or joined it (a Ray someone else initialised stays)."""
        if self._started_ray and not self.lost:  # a shutdown talks to the GCS: after a loss it would block
            import ray

            ray.shutdown()
        self._started_ray = False

    def _largest_node_cpus(self) -> float:
        import ray

        return max((n.get("Resources", {}).get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=0.0)

    def _check_alive(self) -> None:
        """Raise a sentence when the cluster is gone: ray.nodes() (answered by the GCS) within HEALTH_TIMEOUT_S.

        The probe runs in a daemon thread because a call to a GCS that went away blocks until Ray's
        own reconnect timeout (raised to GCS_RECONNECT_S when we connect, so that we, not Ray's
        abort, end the run).
        """
        import threading

        import ray

        answer: dict[str, Any] = {}

        def probe():
            try:
                answer["nodes"] = ray.nodes() if ray.is_initialized() else RuntimeError("Ray was shut down")
            except Exception as exc:  # noqa: BLE001 - every way of losing the cluster is one sentence
                answer["nodes"] = exc

        thread = threading.Thread(target=probe, name="ray-health", daemon=True)
        thread.start()
        thread.join(HEALTH_TIMEOUT_S)
        nodes = answer.get("nodes", TimeoutError(f"the cluster did not answer within {HEALTH_TIMEOUT_S:g} s"))
        if isinstance(nodes, BaseException):
            raise CompressionError(
                f"Lost the connection to the Ray cluster at {self.address!r} ({one_line(nodes)}); the run "
                "stopped, finished variants are kept.")
        if not any(n.get("Alive") for n in nodes):
            raise CompressionError(
                f"The Ray cluster at {self.address!r} has no live node; the run stopped, finished variants are kept.")

    # ------------------------------------------------------------ running

    def open_pool(self, recipe: Recipe, baseline_file: Path, ds, reference_predictions) -> RayPool:
        """Share the baseline once and return a pool that runs variants of this run as tasks.

        Raises:
            CompressionError: the cluster cannot run a task of this size, or cannot be reached.
        """
        import ray

        if self._remote is None:
            self._connect()
        cpus = max(self.cpus_per_task, recipe.evaluation.threads)
        self._check_alive()
        largest = self._largest_node_cpus()
        if largest < cpus:
            raise CompressionError(
                f"Each variant task reserves {cpus} CPUs but the largest node of the Ray cluster at "
                f"{self.address!r} has {largest:g}; lower {CPUS_ENV} or evaluation.threads.")
        try:
            shared = (ray.put(Path(baseline_file).read_bytes()), ray.put(ds), ray.put(reference_predictions))
        except Exception as exc:  # noqa: BLE001
            raise CompressionError(f"Could not share the baseline with the Ray cluster at {self.address!r}: "
                                   f"{one_line(exc)}.") from None
        return RayPool(self, recipe, shared, cpus)

    def slots(self, recipe: Recipe) -> int:
        """How many variant tasks the cluster runs at once (its CPUs over each task's reservation)."""
        import ray

        cpus = max(self.cpus_per_task, recipe.evaluation.threads)
        return max(1, int(ray.cluster_resources().get("CPU", 0) // cpus))

    def run_variants(self, recipe: Recipe, variants: Sequence[VariantSpec], baseline_file: Path, ds,
                     reference_predictions, on_done: Callable[[VariantOutcome], None],
                     cancel: Callable[[], bool] | None = None, on_start: Callable[[VariantSpec], None] | None = None,
                     ) -> None:
        """Run ``variants`` as Ray tasks; call ``on_done`` (in this thread) as each one finishes.

        Raises:
            Cancelled: ``cancel()`` returned True; outstanding tasks were cancelled.
            CompressionError: the cluster cannot run a task of this size, or the connection was lost.
        """
        pool = self.open_pool(recipe, baseline_file, ds, reference_predictions)
        try:
            for spec in variants:
                pool.submit(spec)
                if on_start is not None:
                    on_start(spec)
            while pool.pending:
                outcome = pool.next_done(cancel)
                if outcome is not None:
                    on_done(outcome)
        finally:
            pool.cancel_all()


class RayPool:
    """The variants of one run in flight on Ray: :meth:`submit` them, take each as it ends with :meth:`next_done`.

    Made by :meth:`RayExecutor.open_pool`; also what a search fans its trials out with.
    """

    def __init__(self, executor: RayExecutor, recipe: Recipe, shared: tuple, cpus: int):
        self.executor, self.shared, self.cpus = executor, shared, cpus
        self.recipe_dict = recipe.to_dict()
        self._remote = executor._remote.options(num_cpus=cpus, name="compression-variant")
        self._pending: dict[Any, tuple[VariantSpec, float]] = {}
        self._next_health = time.monotonic() + HEALTH_SECONDS
        self.lost = False  # the connection to the cluster is gone: nothing left to cancel there

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, spec: VariantSpec) -> None:
        """Start one variant as a Ray task."""
        ref = self._remote.remote(spec.to_dict(), self.recipe_dict, *self.shared, self.cpus)
        self._pending[ref] = (spec, time.perf_counter())

    def next_done(self, cancel: Callable[[], bool] | None = None, timeout: float = POLL_SECONDS
                  ) -> VariantOutcome | None:
        """The next variant that ended, or None after ``timeout`` seconds without one.

        Raises:
            Cancelled: ``cancel()`` returned True (the caller cancels the rest with :meth:`cancel_all`).
            CompressionError: the connection to the cluster was lost.
        """
        import ray

        if cancel is not None and cancel():
            raise Cancelled("cancelled")
        if not self._pending:
            return None
        try:
            try:
                ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=timeout)
            except Exception as exc:  # noqa: BLE001
                self.executor._check_alive()
                raise CompressionError(f"Waiting for Ray tasks failed: {one_line(exc)}.") from None
            if not ready:
                if time.monotonic() >= self._next_health:
                    self._next_health = time.monotonic() + HEALTH_SECONDS
                    self.executor._check_alive()
                return None
        except CompressionError:
            self.lost = self.executor.lost = True
            raise
        spec, t0 = self._pending.pop(ready[0])
        return self._outcome(ready[0], spec, t0)

    def cancel_all(self) -> list[VariantSpec]:
        """Force-cancel every task still in flight; returns their variants."""
        import ray

        specs = [spec for spec, _ in self._pending.values()]
        for ref in [] if self.lost else self._pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - the cluster may be gone already
                log.warning("could not cancel a Ray task", exc_info=True)
        self._pending.clear()
        return specs

    def _outcome(self, ref, spec: VariantSpec, t0: float) -> VariantOutcome:
        import ray

        seconds = round(time.perf_counter() - t0, 3)
        try:
            value = ray.get(ref, timeout=60)
        except ray.exceptions.TaskCancelledError:
            return VariantOutcome(spec, {"name": spec.name, "status": "cancelled", "error": "cancelled"}, {}, seconds)
        except ray.exceptions.GetTimeoutError:
            reason = "its result could not be fetched from the Ray cluster within 60 s"
        except ray.exceptions.NodeDiedError:
            reason = "the Ray node running it died"
        except ray.exceptions.OutOfMemoryError:
            reason = "Ray's memory monitor killed its worker (the node ran out of memory)"
        except ray.exceptions.WorkerCrashedError:
            reason = ("its Ray worker process died while running it (a crash such as a segfault in the converter, "
                      "os._exit, or the out-of-memory killer)")
        except ray.exceptions.RayTaskError as exc:
            reason = f"the Ray task raised {one_line(exc.cause) if exc.cause is not None else one_line(exc)}"
        except ray.exceptions.RayError as exc:
            reason = f"the Ray task failed ({one_line(exc)})"
        else:  # the seconds the task itself took (as a local run's row), not the wait in Ray's queue
            return VariantOutcome(spec, value["row"], value["files"], value["seconds"], value.get("where", ""),
                                  value.get("threads"))
        log.warning("variant %s: %s", spec.name, reason)
        return VariantOutcome(spec, {"name": spec.name, "status": "failed", "error": f"Variant {spec.name!r} "
                                     f"failed: {reason}."}, {}, seconds)
