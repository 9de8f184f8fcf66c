"""The main job's model, written in Caffe2's Python API only.

Every function here takes the Caffe2-API modules as a namespace ``c2`` (``core``,
``model_helper``, ``brew``, ``optimizer``, ``regularizer``), so the same code builds the same
NetDefs with caffe2ops and, for the parity check, with real Caffe2 1.5.0 (Python 3.8: keep this
file free of newer syntax).

The model, each seed operator in the role it exists for:

* random Fourier features ``sqrt(2/D)·Cos(x·Ωᵀ + b)``, fixed ``Ω ~ N(0, σ²)``, ``b ~ U[0, 2π)``
  (Rahimi & Recht, *Random Features for Large-Scale Kernel Machines*, NIPS 2007): FC, Cos, Scale,
  then StopGradient (the map is not trained);
* an embedding network FC → ThresholdedRelu → FC (weights of the first layer kept in
  ``[-weight_clip, weight_clip]`` by EnsureClipped after every update);
* a table of learned class proxies, looked up with Gather (so its gradient is a GradientSlice and
  the update is sparse) and kept at ``‖row‖ ≤ 1`` by ``regularizer.MaxNorm`` (SparseNormalize on
  the touched rows);
* CosineSimilarity between embeddings and proxies, CosineEmbeddingCriterion with label 1 for the
  own class and -1 for sampled other classes (with a margin), AveragedLoss;
* gradient clipping by the global L2 norm over every gradient, dense and sparse (LpNorm per
  gradient, Sum, Pow 0.5, ClipTensorByScaling), the norm kept in a blob to report per step.

Each example appears ``1 + negatives`` times in a training batch: once with its own class and
label 1, then with sampled other classes and label -1 (the feeder builds these rows).
"""

import math


class ModelConfig:
    """The architecture and training hyper-parameters (defaults: the main job's)."""

    def __init__(self, **kwargs):
        self.num_classes = 10
        self.num_features = 64
        self.rff_dim = 512
        self.rff_scale = 0.7  # σ of Ω, for inputs scaled to [0, 1]
        self.hidden = 256
        self.embed = 32
        self.alpha = 0.0  # ThresholdedRelu threshold
        self.margin = 0.1
        self.negatives = 3
        self.embed_init_std = 0.002  # small on purpose: early cosine gradients are then large
        self.proxy_init_std = 0.1
        self.weight_clip = 1.0
        self.max_norm = 1.0
        self.base_lr = 2.0
        self.lr_stepsize = 200
        self.lr_gamma = 0.5
        self.clip_norm = 1.0  # None: no clipping (the norm is still computed and reported)
        for key, value in kwargs.items():
            if not hasattr(self, key):
                raise TypeError(f"ModelConfig: unknown setting {key!r}")
            setattr(self, key, value)

    def as_dict(self):
        return dict(vars(self))


def add_forward(c2, model, cfg, data="data"):
    """data [rows, num_features] -> embedding [rows, embed]; returns the embedding blob."""
    init = model.param_init_net
    if model.init_params:
        init.GaussianFill([], "rff_w", shape=[cfg.rff_dim, cfg.num_features], mean=0.0,
                          std=cfg.rff_scale)
        init.UniformFill([], "rff_b", shape=[cfg.rff_dim], min=0.0, max=2.0 * math.pi)
    projection = model.net.FC([data, "rff_w", "rff_b"], "rff_projection")
    features = model.net.Cos(projection, "rff_cos")
    features = model.net.Scale(features, "rff_features", scale=math.sqrt(2.0 / cfg.rff_dim))
    # The random features are fixed: no gradient is computed for them or below them.
    features = model.net.StopGradient(features, "rff_fixed_features")
    hidden = c2.brew.fc(model, features, "hidden", dim_in=cfg.rff_dim, dim_out=cfg.hidden)
    hidden = model.net.ThresholdedRelu(hidden, "hidden_act", alpha=cfg.alpha)
    return c2.brew.fc(
        model, hidden, "embedding", dim_in=cfg.hidden, dim_out=cfg.embed,
        weight_init=("GaussianFill", {"std": cfg.embed_init_std}),
    )


def add_proxies(c2, model, cfg):
    """The class-proxy table [num_classes, embed], a parameter of ``model``."""
    if model.init_params:
        model.param_init_net.GaussianFill([], "proxies", shape=[cfg.num_classes, cfg.embed],
                                          mean=0.0, std=cfg.proxy_init_std)
    proxies = c2.core.BlobReference("proxies")
    model.AddParameter(proxies)
    return proxies


def add_global_norm_clipping(c2, net, grad_map, clip_norm):
    """``global_grad_norm = sqrt(Σ_g Σ g²)`` over ``grad_map``'s gradients (dense or GradientSlice);
    with ``clip_norm``, every gradient is scaled by ``clip_norm / norm`` when ``norm > clip_norm``
    (ClipTensorByScaling, in place). Returns the norm blob."""
    params_of = {str(g.values): p for p, g in grad_map.items()
                 if isinstance(g, c2.core.GradientSlice)}
    grads = list(grad_map.values())
    squares = []
    for g in grads:
        if isinstance(g, c2.core.GradientSlice):
            # Rows may repeat in a slice: the norm is that of the summed (dense) gradient.
            dense = net.SparseToDense([g.indices, g.values, params_of[str(g.values)]],
                                      f"{g.values}_dense")
            squares.append(net.LpNorm([dense], f"{g.values}_sumsq", p=2))
        else:
            squares.append(net.LpNorm([g], f"{g}_sumsq", p=2))
    total = net.Sum(squares, "global_grad_sumsq") if len(squares) > 1 else squares[0]
    norm = net.Pow([total], "global_grad_norm", exponent=0.5)
    if clip_norm is not None:
        for g in grads:
            g = g.values if isinstance(g, c2.core.GradientSlice) else g
            net.ClipTensorByScaling([g, norm], [g], threshold=float(clip_norm))
    return norm


def drop_unread_input_gradients(net_proto):
    """Drop the dX output of each FCGradient that no later operator reads (here the gradient of
    the fixed random features, below StopGradient), so it is not computed: Caffe2's FCGradient,
    like ours, then takes two outputs (dW, db). Returns the dropped blob names."""
    dropped = []
    ops = net_proto.op
    for i, op in enumerate(ops):
        if op.type == "FCGradient" and len(op.output) == 3:
            dx = op.output[2]
            if not any(dx in later.input for later in ops[i + 1:]):
                del op.output[2]
                dropped.append(dx)
    return dropped


def build_training(c2, cfg):
    """The training model: forward, loss, gradients, clipping, SGD, MaxNorm, weight clipping."""
    model = c2.model_helper.ModelHelper(name="digits_train")
    embedding = add_forward(c2, model, cfg)
    proxies = add_proxies(c2, model, cfg)
    picked = model.net.Gather([proxies, "proxy_index"], "picked_proxies")
    similarity = model.net.CosineSimilarity([embedding, picked], "similarity")
    pair_loss = model.net.CosineEmbeddingCriterion([similarity, "pair_label"], "pair_loss",
                                                   margin=cfg.margin)
    loss = model.net.AveragedLoss(pair_loss, "loss")
    grad_map = model.AddGradientOperators([loss])
    drop_unread_input_gradients(model.net.Proto())
    params = [p for p in model.GetParams()]
    add_global_norm_clipping(c2, model.net, {p: grad_map[p] for p in params}, cfg.clip_norm)
    c2.optimizer.build_sgd(model, base_learning_rate=cfg.base_lr, policy="step",
                           stepsize=cfg.lr_stepsize, gamma=cfg.lr_gamma)
    c2.regularizer.MaxNorm(cfg.max_norm)(
        model.net, model.param_init_net, proxies, grad=grad_map[proxies],
        by=c2.regularizer.RegularizationBy.AFTER_OPTIMIZER,
    )
    model.net.EnsureClipped(["hidden_w"], ["hidden_w"], min=-cfg.weight_clip,
                            max=cfg.weight_clip)
    return model, loss, grad_map


def build_inference(c2, cfg):
    """The deployable net: data -> embedding (parameters come from the training workspace)."""
    model = c2.model_helper.ModelHelper(name="digits_embed", init_params=False)
    add_forward(c2, model, cfg)
    return model
