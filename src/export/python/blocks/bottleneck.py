class Bottleneck(nn.Module):
    """Bottleneck residual block of He et al. (2016), "Deep residual learning
    for image recognition": relu(F(x) + shortcut(x)) with
    F = conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1-BN; the output has
    4 * width channels.

    `shortcut` is `nn.Identity()`, a `ZeroPadShortcut` (option A) or a
    `ProjectionShortcut` (options B and C); `None` removes the addition.

    Stochastic depth (Huang et al. 2016, "Deep networks with stochastic
    depth"): in training the branch F is skipped with probability
    1 - survival; at test time it is scaled by survival.

    `scalars` (a `BranchScalars`, or None) holds what a SkipInit or Fixup
    start left in the block.
    """

    def __init__(self, in_channels, width, stride=1, shortcut=None,
                 survival=1.0, activation=nn.ReLU, batch_norm=True,
                 scalars=None):
        super().__init__()
        # Fixup's scalar biases replace the convolutions' own.
        bias = not batch_norm and not (scalars is not None and scalars.fixup)
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=bias)
        self.bn1 = nn.BatchNorm2d(width) if batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=1,
                               bias=bias)
        self.bn2 = nn.BatchNorm2d(width) if batch_norm else nn.Identity()
        self.conv3 = nn.Conv2d(width, 4 * width, 1, bias=bias)
        self.bn3 = nn.BatchNorm2d(4 * width) if batch_norm else nn.Identity()
        self.shortcut = shortcut
        self.survival = survival
        self.scalars = scalars
        self.act = activation()

    def branch(self, x):
        """The residual function F."""
        if self.scalars is not None and self.scalars.fixup:
            return fixup_branch(self, x, 3)
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x):
        if self.shortcut is None:
            return self.act(self.branch(x))
        return self.act(join(self, x, x))
