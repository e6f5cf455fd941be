"""The fix for each cause, as a line of the user's own framework (``Dense(1,
activation="sigmoid")`` with ``loss="binary_crossentropy"``, ``X = X / 255.0``,
``Adam(learning_rate=1e-3)``), never a scalelab spec key. One function per cause; each
takes the :class:`~._model.ModelDesc` and what the check measured."""

from __future__ import annotations

from ._model import ModelDesc


def _k(d: ModelDesc) -> bool:
    return d.framework == "keras"


def optimizer_call(d: ModelDesc, lr: float) -> str:
    name = d.optimizer or ("Adam" if _k(d) else "SGD")
    if _k(d):
        return f"keras.optimizers.{name}(learning_rate={lr:g})"
    return f"torch.optim.{name}(model.parameters(), lr={lr:g})"


def binary_output(d: ModelDesc) -> str:
    if _k(d):
        return f'the output layer {d.output_layer!r} as Dense(1, activation="sigmoid") with loss="binary_crossentropy"'
    return "the output layer as nn.Linear(hidden, 1) with no activation, and nn.BCEWithLogitsLoss()"


def softmax_output(d: ModelDesc) -> str:
    loss = "sparse_categorical_crossentropy" if d.loss == "sparse_categorical_crossentropy" else "categorical_crossentropy"
    if _k(d):
        return (f'the output layer {d.output_layer!r} as Dense({d.output_units}, activation="softmax") with '
                f'loss="{loss}"')
    return "no activation after the last nn.Linear (nn.CrossEntropyLoss applies log-softmax itself)"


def logits_twice(d: ModelDesc) -> str:
    if _k(d):
        return (f'either activation=None on {d.output_layer!r} with from_logits=True, or keep the '
                f'{d.output_activation} and from_logits=False')
    return (f"remove the {d.output_activation} after the last layer: {d.loss_call or 'the loss'} applies "
            f"{'log-softmax' if 'CrossEntropy' in d.loss_call or d.loss == 'sparse_categorical_crossentropy' else 'the sigmoid'} itself")


def nll_needs_log_probs(d: ModelDesc) -> str:
    return "end the model with nn.LogSoftmax(dim=1) (or F.log_softmax(x, dim=1)), or use nn.CrossEntropyLoss() on the logits"


def multilabel_output(d: ModelDesc) -> str:
    if _k(d):
        return (f'Dense({d.output_units}, activation="sigmoid") for {d.output_layer!r} with '
                f'loss="binary_crossentropy" (each label is its own yes/no)')
    return f"nn.Linear(hidden, {d.output_units}) with nn.BCEWithLogitsLoss() (each label is its own yes/no)"


def unbounded_output(d: ModelDesc, lo: float, hi: float) -> str:
    if _k(d):
        return (f"activation=None (linear) on the output layer {d.output_layer!r}: a {d.output_activation} "
                f"output stays in [{lo:g}, {hi:g}]")
    return f"no {d.output_activation} after the last nn.Linear: it keeps the output in [{lo:g}, {hi:g}]"


def sparse_vs_onehot(d: ModelDesc, onehot_targets: bool) -> str:
    if _k(d):
        if onehot_targets:
            return 'loss="categorical_crossentropy" for one-hot targets (or y = y.argmax(axis=1))'
        return f'loss="sparse_categorical_crossentropy" for integer labels (or y = keras.utils.to_categorical(y, {d.output_units}))'
    if onehot_targets:
        return "pass class indices: y = y.argmax(dim=1)"
    return "pass class indices of dtype torch.long to nn.CrossEntropyLoss"


def labels_range(d: ModelDesc, lo, hi) -> str:
    if d.loss == "binary_crossentropy" or d.output_units == 1:
        return f"map the labels to 0 and 1: y = (y == {hi:g}).astype('float32')" if _k(d) else \
               f"map the labels to 0 and 1: y = (y == {hi:g}).float()"
    return f"renumber the labels to 0..{d.output_units - 1} (e.g. y = y - y.min()), or give the output layer {int(hi) + 1} units"


def fractional_labels(d: ModelDesc) -> str:
    return ("class labels must be whole numbers 0..C-1: these are continuous values, so use a regression loss "
            + ('(loss="mse" with a linear output)' if _k(d) else "(nn.MSELoss() on a linear output)")
            + " or bin them into classes")


def one_class(d: ModelDesc) -> str:
    return "check how y was built: every training label is the same class, so there is nothing to learn"


def imbalance(d: ModelDesc) -> str:
    if _k(d):
        return "weigh the classes (model.fit(..., class_weight={0: 1.0, 1: n0 / n1})) and judge by per-class recall"
    return "weigh the classes (nn.CrossEntropyLoss(weight=...) or BCEWithLogitsLoss(pos_weight=...)) and judge by per-class recall"


def sorted_labels(d: ModelDesc) -> str:
    if _k(d):
        return "model.fit(..., shuffle=True) (the default), or shuffle x and y together before fit"
    return "DataLoader(dataset, batch_size=..., shuffle=True)"


def input_scale(d: ModelDesc, rms: float, maximum: float) -> str:
    if maximum <= 255.0 + 1e-6 and maximum > 1.0 and maximum >= 0.5 * 255:
        return "X = X / 255.0 (pixel values), for every split"
    if _k(d):
        return ("standardize the inputs: norm = keras.layers.Normalization(); norm.adapt(X) as the first layer, "
                "or X = (X - X.mean(0)) / X.std(0)")
    return "standardize the inputs: X = (X - X.mean(0)) / X.std(0) (the training split's mean and std)"


def input_offset(d: ModelDesc) -> str:
    return "center the inputs: X = (X - X.mean(0)) / X.std(0) (the training split's mean and std)"


def target_scale(d: ModelDesc) -> str:
    return ("scale the targets: y_s = (y - y.mean()) / y.std(), train on y_s and undo it on predictions "
            "(pred * y.std() + y.mean())")


def non_finite(d: ModelDesc, where: str) -> str:
    arr = "X" if where == "inputs" else "y"
    return (f"drop or fill the missing values before training: {arr} = np.nan_to_num({arr}) or "
            f"mask = np.isfinite({arr}).all(axis=1)")


def add_nonlinearity(d: ModelDesc, first: str) -> str:
    if _k(d):
        return f'give {first!r} an activation: Dense(..., activation="relu")'
    return f"put a nonlinearity after {first!r}: nn.ReLU() (or F.relu(...) in forward)"


def learning_rate(d: ModelDesc, suggested: float) -> str:
    return optimizer_call(d, suggested)


def zero_grad(d: ModelDesc) -> str:
    return "call optimizer.zero_grad() before loss.backward() in every step"


def optimizer_params(d: ModelDesc) -> str:
    return "build the optimizer from the model you train: torch.optim.Adam(model.parameters(), lr=...)"


def frozen(d: ModelDesc) -> str:
    return "let the layers train: for p in model.parameters(): p.requires_grad = True" if not _k(d) else \
        "layer.trainable = True for the layers that should learn, then compile again"


def target_shape(d: ModelDesc) -> str:
    return "match the shapes: loss_fn(out.squeeze(1), y) or y = y.unsqueeze(1) (MSE broadcasts (n, 1) against (n,) to (n, n))"


def dead_units(d: ModelDesc, layer: str) -> str:
    if _k(d):
        return f'for {layer!r}: activation="leaky_relu", a lower learning rate, or He init (kernel_initializer="he_normal")'
    return f"for {layer!r}: nn.LeakyReLU(), a lower learning rate, or nn.init.kaiming_normal_"


def saturated_units(d: ModelDesc, layer: str) -> str:
    return (f"for {layer!r}: scale the inputs to unit size, or use a relu activation"
            + (' (activation="relu")' if _k(d) else " (nn.ReLU())"))


def gradient_flow(d: ModelDesc, exploding: bool) -> str:
    if exploding:
        return ("clip the gradient norm: " + ("keras.optimizers.Adam(clipnorm=1.0)" if _k(d) else
                "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0) before optimizer.step()")
                + ", and lower the learning rate")
    return ("use relu activations and He initialization, or add normalization: " +
            ("keras.layers.BatchNormalization()" if _k(d) else "nn.BatchNorm1d(...)") + " between layers")
