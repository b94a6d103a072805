class BasicBlock(nn.Module):
    """Residual block of He et al. (2016), "Deep residual learning for image
    recognition": relu(F(x) + shortcut(x)) with
    F = conv3x3-BN-ReLU-conv3x3-BN (`layers` 3x3 convolutions, 2 in the
    paper; conv1, bn1, conv2, … in the state dict).

    `shortcut` is `nn.Identity()`, a `ZeroPadShortcut` (option A) or a
    `ProjectionShortcut` (options B and C); `None` removes the addition,
    leaving two plain layers: the plain twin of the residual network.

    Stochastic depth (Huang et al. 2016, "Deep networks with stochastic
    depth"): in training the branch F is skipped with probability
    1 - survival; at test time it is scaled by survival.

    `scalars` (a `BranchScalars`, or None) holds what a SkipInit or Fixup
    start left in the block.
    """

    def __init__(self, in_channels, out_channels, stride=1, shortcut=None,
                 survival=1.0, activation=nn.ReLU, batch_norm=True,
                 layers=2, scalars=None):
        super().__init__()
        self.layers = layers
        # Fixup's scalar biases replace the convolutions' own.
        bias = not batch_norm and not (scalars is not None and scalars.fixup)
        for i in range(1, layers + 1):
            conv = nn.Conv2d(in_channels if i == 1 else out_channels,
                             out_channels, 3, stride if i == 1 else 1,
                             padding=1, bias=bias)
            setattr(self, f"conv{i}", conv)
            setattr(self, f"bn{i}", (nn.BatchNorm2d(out_channels)
                                     if batch_norm else nn.Identity()))
        self.shortcut = shortcut
        self.survival = survival
        self.scalars = scalars
        self.act = activation()

    def branch(self, x):
        """The residual function F."""
        if self.scalars is not None and self.scalars.fixup:
            return fixup_branch(self, x, self.layers)
        for i in range(1, self.layers + 1):
            if i > 1:
                x = self.act(x)
            x = getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x))
        return x

    def forward(self, x):
        if self.shortcut is None:
            return self.act(self.branch(x))
        return self.act(join(self, x, x))
