class ResidualDense(nn.Module):
    """Fully connected residual block of He et al. (2016), "Deep residual
    learning for image recognition" (the residual function may be "fully
    connected or convolutional"): act(F(x) + shortcut(x)) with F made of
    `layers` linear layers, linear-BN-act-…-linear-BN, on the flattened
    input.

    Pre-activation (He et al. 2016b, "Identity mappings in deep residual
    networks"): F = BN-act-linear-…-BN-act-linear and nothing after the
    addition; a projection shortcut then sees the pre-activated input.

    `shortcut` is `nn.Identity()` or a `DenseProjection` (where the width
    changes, or in every block); `None` removes the addition, leaving a
    plain stack of layers. Stochastic depth (Huang et al. 2016): in
    training F is skipped with probability 1 - survival; at test time it
    is scaled by survival.

    `scalars` (a `BranchScalars`, or None) holds what a SkipInit or Fixup
    start left in the block.
    """

    def __init__(self, in_features, units, layers=2, shortcut=None,
                 preactivation=False, survival=1.0, activation=nn.ReLU,
                 batch_norm=True, scalars=None):
        super().__init__()
        self.layers = layers
        self.preactivation = preactivation
        # Fixup's scalar biases replace the layers' own.
        bias = not batch_norm and not (scalars is not None and scalars.fixup)
        for i in range(1, layers + 1):
            fan_in = in_features if i == 1 else units
            setattr(self, f"linear{i}", nn.Linear(fan_in, units, bias=bias))
            width = fan_in if preactivation else units
            setattr(self, f"bn{i}", (nn.BatchNorm1d(width) if batch_norm
                                     else nn.Identity()))
        self.shortcut = shortcut
        self.projects = shortcut is not None and any(
            True for _ in shortcut.parameters())
        self.survival = survival
        self.scalars = scalars
        self.act = activation()

    def branch(self, h):
        """The residual function F (after its first BN-act when
        pre-activated)."""
        if self.scalars is not None and self.scalars.fixup:
            return fixup_branch(self, h, self.layers)
        for i in range(1, self.layers + 1):
            linear = getattr(self, f"linear{i}")
            bn = getattr(self, f"bn{i}")
            if self.preactivation:
                if i > 1:
                    h = self.act(bn(h))
                h = linear(h)
            else:
                if i > 1:
                    h = self.act(h)
                h = bn(linear(h))
        return h

    def finish(self, y):
        return y if self.preactivation else self.act(y)

    def forward(self, x):
        x = torch.flatten(x, 1)
        out = self.act(self.bn1(x)) if self.preactivation else x
        if self.shortcut is None:
            return self.finish(self.branch(out))
        shortcut_input = out if self.preactivation and self.projects else x
        return self.finish(join(self, shortcut_input, out))
