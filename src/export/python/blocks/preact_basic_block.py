class PreActBasicBlock(nn.Module):
    """Pre-activation residual block of He et al. (2016b), "Identity mappings
    in deep residual networks": x + F(x) with
    F = BN-ReLU-conv3x3-BN-ReLU-conv3x3 and nothing after the addition
    (`layers` BN-ReLU-conv3x3 units, 2 in the paper).

    A projection shortcut (the only kind with weights) sees the
    pre-activated input, as in the paper; the identity and option A carry
    x itself. `None` removes the addition.

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
        for i in range(1, layers + 1):
            channels = in_channels if i == 1 else out_channels
            setattr(self, f"bn{i}", (nn.BatchNorm2d(channels)
                                     if batch_norm else nn.Identity()))
            setattr(self, f"conv{i}", nn.Conv2d(
                channels, out_channels, 3, stride if i == 1 else 1,
                padding=1, bias=not batch_norm))
        self.shortcut = shortcut
        self.projects = shortcut is not None and any(
            True for _ in shortcut.parameters())
        self.survival = survival
        self.scalars = scalars
        self.act = activation()

    def branch(self, out):
        """The residual function F after its first BN-ReLU."""
        out = self.conv1(out)
        for i in range(2, self.layers + 1):
            bn, conv = getattr(self, f"bn{i}"), getattr(self, f"conv{i}")
            out = conv(self.act(bn(out)))
        return out

    def forward(self, x):
        out = self.act(self.bn1(x))
        if self.shortcut is None:
            return self.branch(out)
        return join(self, out if self.projects else x, out)
