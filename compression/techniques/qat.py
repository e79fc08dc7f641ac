"""Quantization-aware training with tfmot, including the collaborative schemes.

Layers tfmot's 8-bit scheme cannot quantize (Conv1D, LSTM, standalone
BatchNormalization, ...) stay float and are listed with the reason — never a crash.

Usage::

    qat_model, info = quantize_aware(baseline, QATConfig(), x, y, epochs=2)
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable

from .. import _tf
from ..config import Preserve, QATConfig
from ..errors import CompressionError, one_line
from ..inputs.models import check_layer_names, clone
from ..progress import ProgressFn
from .train import compile_for_training, fit

_FOLDABLE = ("Conv2D", "DepthwiseConv2D", "Dense", "SeparableConv2D")
log = logging.getLogger(__name__)


@contextlib.contextmanager
def _tfmot_notices():
    """Send what tfmot's collaborative schemes say while wrapping a model to the log (DEBUG), not the terminal.

    tfmot 0.8.1 says it with ``warnings.warn`` ("No clustering performed on layer quant_x. Too many centroids
    to cluster.", also for every layer that was never clustered) and with the root logger's module-level
    ``logging.warning`` ("Input layer does not contain zero weights, so apply CQAT instead.", for every dense
    layer under PCQAT), which on a process without logging set up also installs a stderr handler on the root
    logger for good (``logging.basicConfig``). Both reached a CLI run's terminal. What they mean for the file
    is measured instead: :func:`compression.run.recipe` notes a layer whose zeros or clusters a later stage lost.
    """
    root = logging.getLogger()

    def divert(record: logging.LogRecord) -> bool:
        if record.name != "root":
            return True  # other loggers' records go where they went
        log.debug("tfmot: %s", record.getMessage())
        return False

    # tf.saved_model.save's first absl log line may already have given root a stderr handler (basicConfig):
    # filter the root logger itself; a handler on root also stops logging.warning() from calling basicConfig()
    placeholder = logging.NullHandler()
    root.addFilter(divert)
    root.addHandler(placeholder)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        root.removeHandler(placeholder)
        root.removeFilter(divert)
    for w in caught:
        log.debug("tfmot: %s", w.message)


def _scheme(preserve: Preserve):
    combine = _tf.tfmot().experimental.combine
    if preserve is Preserve.SPARSITY:
        return _supports_like_default(combine.Default8BitPrunePreserveQuantizeScheme())
    if preserve is Preserve.CLUSTERS:
        return _supports_like_default(combine.Default8BitClusterPreserveQuantizeScheme())
    if preserve is Preserve.BOTH:
        return _supports_like_default(combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True))
    return _tf.tfmot().quantization.keras.default_8bit.Default8BitQuantizeScheme()


def _supports_like_default(scheme):
    """Make a collaborative scheme claim only the layers tfmot's default 8-bit registry supports.

    tfmot 0.8.1's prune/cluster-preserve registries say they support every layer without
    kernels (TFOpLambda ``x + 3`` of a hard-swish, Normalization), then ask the default registry
    for its config, which raises "get_quantize_config() called on an unsupported layer" while
    ``quantize_apply`` adds output quantizers before such a layer. With the default registry's
    answer, those layers stay float exactly as under plain QAT.

    Each layer also gets its own weight quantizer. The cluster-preserve registry hands one shared quantizer
    to every Conv2D (and one to every Dense), and PCQAT's quantizer turns its ``preserve_sparsity`` off for
    good when it meets a layer without zeros ("Input layer does not contain zero weights, so apply CQAT
    instead"). A dense first convolution, left unpruned, thus switched sparsity preservation off for every
    later, pruned convolution: an 80 %-sparse conv came out of PCQAT with no zeros at all. With a quantizer
    per layer, a dense layer gets CQAT and a pruned one PCQAT, as tfmot's message means.
    """
    import copy

    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit.default_8bit_quantize_registry import (  # noqa: E501
        Default8BitQuantizeRegistry,
    )

    default = Default8BitQuantizeRegistry()
    get_registry = scheme.get_quantize_registry

    def registry():
        inner = get_registry()
        claims = inner.supports
        inner.supports = lambda layer: claims(layer) and default.supports(layer)
        shared_config = inner.get_quantize_config

        def own_quantizer(layer):
            config = shared_config(layer)
            if hasattr(getattr(config, "weight_quantizer", None), "preserve_sparsity"):
                config.weight_quantizer = copy.copy(config.weight_quantizer)
            return config

        inner.get_quantize_config = own_quantizer
        return inner

    scheme.get_quantize_registry = registry
    return scheme


def plan_annotation(model, layers: tuple[str, ...] | None = None) -> tuple[list[str], list[dict]]:
    """Which layers QAT quantizes, and which stay float with the reason.

    A BatchNormalization right after a quantized Conv/Dense is folded by tfmot's
    transforms, so it is annotated with it; a standalone one is not supported.
    """
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit.default_8bit_quantize_registry import (  # noqa: E501
        Default8BitQuantizeRegistry,
    )

    registry = Default8BitQuantizeRegistry()
    check_layer_names(model, layers, "qat.layers")
    chosen, float_layers = [], []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if layers is not None and layer.name not in layers:
            if layer.weights:
                float_layers.append({"name": layer.name, "reason": "not selected for QAT"})
            continue
        if registry.supports(layer):
            chosen.append(layer.name)
            continue
        if kind == "BatchNormalization":
            inbound = [n.inbound_layers for n in layer._inbound_nodes]
            prev = inbound[0] if inbound else None
            prev = prev[0] if isinstance(prev, list) and prev else prev
            if prev is not None and type(prev).__name__ in _FOLDABLE and prev.name in chosen:
                chosen.append(layer.name)
                continue
            float_layers.append({"name": layer.name, "reason": "standalone BatchNormalization is not supported "
                                 "by tfmot's 8-bit QAT (only when it follows a Conv/Dense)"})
            continue
        float_layers.append({"name": layer.name, "reason": f"tfmot's default 8-bit QAT scheme has no quantize "
                             f"config for {kind}; it stays float (the converter quantizes it after training)"})
    return chosen, float_layers


def apply_qat(model, config: QATConfig, preserve: Preserve = Preserve.NONE):
    """Annotate the supported layers of a fresh copy and apply the quantize scheme.

    Returns:
        (QAT model, quantized layer names, float layers with reasons).
    """
    keras = _tf.keras()
    qk = _tf.tfmot().quantization.keras
    chosen, float_layers = plan_annotation(model, config.layers)
    if not any(model.get_layer(n).weights for n in chosen):
        raise CompressionError("QAT found no layer it can quantize in this model: "
                               + "; ".join(f"{f['name']}: {f['reason']}" for f in float_layers[:3]))

    def annotate(layer):
        return qk.quantize_annotate_layer(layer) if layer.name in chosen else layer

    annotated = keras.models.clone_model(clone(model), clone_function=annotate)
    try:
        with qk.quantize_scope(), _tfmot_notices():
            quantized = qk.quantize_apply(annotated, _scheme(preserve))
    except (ValueError, TypeError, RuntimeError) as exc:  # tfmot's refusals: one sentence, not a traceback
        name = {Preserve.NONE: "QAT", Preserve.SPARSITY: "PQAT", Preserve.CLUSTERS: "CQAT",
                Preserve.BOTH: "PCQAT"}[preserve]
        raise CompressionError(f"tfmot's {name} cannot quantize this model: {one_line(exc)}") from exc
    return quantized, chosen, float_layers


def quantize_aware(model, config: QATConfig, x, y, *, epochs: int, preserve: Preserve = Preserve.NONE,
                   batch_size: int = 64, learning_rate: float = 1e-4, progress: ProgressFn | None = None,
                   cancel: Callable[[], bool] | None = None, variant: str = "", fraction_span=(0.0, 1.0)):
    """QAT fine-tune of a copy of ``model`` (PQAT/CQAT/PCQAT when ``preserve`` says so).

    Returns:
        (QAT model ready for conversion, info dict with ``layers``, ``float_layers``, ``history``, ``scheme``).
    """
    quantized, chosen, float_layers = apply_qat(model, config, preserve)
    compile_for_training(quantized, learning_rate)
    history = fit(quantized, x, y, epochs=epochs, batch_size=batch_size, progress=progress, cancel=cancel,
                  variant=variant, fraction_span=fraction_span)
    return quantized, {"layers": chosen, "float_layers": float_layers, "history": history,
                       "scheme": preserve.scheme_name}
