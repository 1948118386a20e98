"""``dl.utils.plot_model``: a model's graph drawn with matplotlib (no graphviz).

Each layer is a box (a layer called several times is one box, as Keras draws it),
each inbound connection an arrow.  Layers are placed in ranks by their longest path
from an input (top to bottom, or left to right with ``rankdir="LR"``), in the order
they first appear within a rank.  Drawn on a ``matplotlib.figure.Figure`` with the Agg
canvas: pyplot and its global state are not touched.
"""
import os

import numpy as np


def _graph(model):
    """(layers in order, {id(layer): [ids of the layers feeding it]})."""
    from .functional import Functional
    from .layers import InputLayer
    if isinstance(model, Functional):
        layers = model.layers
        inbound = {id(layer): [] for layer in layers}
        for node in model._nodes:
            for t in node.inputs:
                src = id(t.node.layer)
                if src not in inbound[id(node.layer)]:
                    inbound[id(node.layer)].append(src)
        return layers, inbound
    layers = list(model.layers)
    if getattr(model, "_input", None) is not None:
        layers.insert(0, model._input)
    elif layers:
        shape = model._sample_shape if model.built else None
        if shape is not None:
            head = InputLayer(shape=shape, name=f"{model.name}_input")
            layers.insert(0, head)
    inbound = {id(layers[0]): []} if layers else {}
    for prev, layer in zip(layers, layers[1:]):
        inbound[id(layer)] = [id(prev)]
    return layers, inbound


def _label(layer, show_shapes, show_dtype, show_layer_names, show_layer_activations,
           show_trainable):
    from .layers import InputLayer
    kind = type(layer).__name__
    lines = [f"{layer.name} ({kind})" if show_layer_names else kind]
    if show_layer_activations and getattr(layer, "activation", None) is not None:
        lines.append(f"activation: {layer.activation.name}")
    if show_shapes:
        if isinstance(layer, InputLayer):
            shape_in = shape_out = (None,) + tuple(layer.input_spec_shape)
        else:
            shape_in = layer.input_shape
            if isinstance(shape_in, list):
                shape_in = ", ".join(str((None,) + tuple(s)) for s in shape_in)
            elif shape_in is not None:
                shape_in = (None,) + tuple(shape_in)
            shape_out = (None,) + tuple(layer.output_shape) if layer.output_shape \
                is not None else "?"
        lines.append(f"in: {shape_in}   out: {shape_out}")
    if show_dtype and layer.dtype is not None:
        lines.append(f"dtype: {np.dtype(layer.dtype).name}")
    if show_trainable:
        lines.append(f"trainable: {layer.trainable}")
    return "\n".join(lines)


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
               show_layer_names=True, rankdir="TB", expand_nested=False, dpi=96,
               show_layer_activations=False, show_trainable=False):
    """Draw ``model``'s layers and their connections to ``to_file`` (PNG, SVG, PDF:
    matplotlib's formats, by the extension), as Keras's ``plot_model`` does with
    graphviz.  ``rankdir`` is "TB" (top to bottom) or "LR" (left to right).  Needs
    matplotlib (the ``examples`` extra).  Returns the path written."""
    from kernels.checks import short_repr
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir: expected 'TB' or 'LR', got {short_repr(rankdir)}")
    if not getattr(model, "built", False):
        raise ValueError("model: it is not built yet (fit, predict or build it first, "
                         "or give it an input shape)")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyBboxPatch
    except ImportError as exc:
        raise ImportError(f"plot_model needs matplotlib (pip install 'dlkernels[examples]'"
                          f"): {exc}") from None
    layers, inbound = _graph(model)
    rank = {}
    for layer in layers:                 # graph order: a layer's sources come first
        rank[id(layer)] = 1 + max((rank[s] for s in inbound[id(layer)]), default=-1)
    ranks = {}
    for layer in layers:
        ranks.setdefault(rank[id(layer)], []).append(layer)
    labels = {id(layer): _label(layer, show_shapes, show_dtype, show_layer_names,
                                show_layer_activations, show_trainable) for layer in layers}
    # box sizes in inches from the text (monospace-ish estimate at 9 pt)
    char_w, line_h = 0.082, 0.19
    size = {}
    for layer in layers:
        text = labels[id(layer)].split("\n")
        size[id(layer)] = (max(len(t) for t in text) * char_w + 0.3, len(text) * line_h + 0.2)
    gap_rank, gap_box = 0.55, 0.35
    # one layout in (across a rank, along the ranks) coordinates; TB and LR only
    # differ in which of a box's sides lies along the ranks
    tb = rankdir == "TB"
    along = {k: (h if tb else w) for k, (w, h) in size.items()}
    across = {k: (w if tb else h) for k, (w, h) in size.items()}
    step = gap_rank if tb else gap_rank * 1.5
    spans = {r: sum(across[id(l)] for l in ls) + gap_box * (len(ls) - 1)
             for r, ls in ranks.items()}
    total = max(spans.values())
    pos, depth = {}, 0.0
    for r in sorted(ranks):
        thick = max(along[id(l)] for l in ranks[r])
        offset = (total - spans[r]) / 2
        for layer in ranks[r]:
            a, c = offset + across[id(layer)] / 2, depth + thick / 2
            pos[id(layer)] = (a, -c) if tb else (c, -a)
            offset += across[id(layer)] + gap_box
        depth += thick + step
    extent = depth - step
    fig_w, fig_h = (total + 1.2, extent + 0.8) if tb else (extent + 1.2, total + 1.2)
    fig = Figure(figsize=(max(fig_w, 1.0), max(fig_h, 0.6)), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    half_w = max(s[0] for s in size.values()) / 2 + 0.6
    half_h = max(s[1] for s in size.values()) / 2 + 0.4
    ax.set_xlim(min(xs) - half_w, max(xs) + half_w)
    ax.set_ylim(min(ys) - half_h, max(ys) + half_h)
    for layer in layers:                 # arrows first, boxes over them
        cx, cy = pos[id(layer)]
        for src in inbound[id(layer)]:
            sx, sy = pos[src]
            skip = rank[id(layer)] - rank[src] > 1
            if skip:        # past the ranks between: around the boxes, on their side
                if rankdir == "TB":
                    start = (sx + size[src][0] / 2, sy)
                    end = (cx + size[id(layer)][0] / 2, cy)
                else:
                    start = (sx, sy - size[src][1] / 2)
                    end = (cx, cy - size[id(layer)][1] / 2)
                style = "arc,angleA=0,angleB=0,armA=30,armB=30,rad=8" if rankdir == "TB" \
                    else "arc,angleA=-90,angleB=-90,armA=20,armB=20,rad=8"
            elif rankdir == "TB":
                start, end = (sx, sy - size[src][1] / 2), (cx, cy + size[id(layer)][1] / 2)
                style = "arc3"
            else:
                start, end = (sx + size[src][0] / 2, sy), (cx - size[id(layer)][0] / 2, cy)
                style = "arc3"
            ax.annotate("", xy=end, xytext=start,
                        arrowprops=dict(arrowstyle="-|>", color="#444444", lw=1.0,
                                        shrinkA=0, shrinkB=0, connectionstyle=style))
    for layer in layers:
        cx, cy = pos[id(layer)]
        w, h = size[id(layer)]
        ax.add_patch(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h,
                                    boxstyle="round,pad=0.02,rounding_size=0.06",
                                    facecolor="#e8f0fb", edgecolor="#35608f", lw=1.0))
        ax.text(cx, cy, labels[id(layer)], ha="center", va="center", fontsize=9,
                family="DejaVu Sans Mono")
    to_file = os.fspath(to_file)
    fig.savefig(to_file, dpi=dpi)
    return to_file
