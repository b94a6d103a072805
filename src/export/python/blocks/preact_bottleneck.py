class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck block of He et al. (2016b), "Identity
    mappings in deep residual networks": x + F(x) with
    F = BN-ReLU-conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1 and nothing after
    the addition; the output has 4 * width channels.

    A projection shortcut (the only kind with weights) sees the
    pre-activated input, as in the paper; the identity and option A carry
    x itself. `None` removes the addition.

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
        self.bn1 = nn.BatchNorm2d(in_channels) if batch_norm else nn.Identity()
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(width) if batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=1,
                               bias=not batch_norm)
        self.bn3 = nn.BatchNorm2d(width) if batch_norm else nn.Identity()
        self.conv3 = nn.Conv2d(width, 4 * width, 1, bias=not batch_norm)
        self.shortcut = shortcut
        self.projects = shortcut is not None and any(
            True for _ in shortcut.parameters())
        self.survival = survival
        self.scalars = scalars
        self.act = activation()

    def branch(self, out):
        """The residual function F after its first BN-ReLU."""
        out = self.act(self.bn2(self.conv1(out)))
        return self.conv3(self.act(self.bn3(self.conv2(out))))

    def forward(self, x):
        out = self.act(self.bn1(x))
        if self.shortcut is None:
            return self.branch(out)
        return join(self, out if self.projects else x, out)
