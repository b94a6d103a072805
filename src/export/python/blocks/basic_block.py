class BasicBlock(nn.Module):
    """Residual block of He et al. (2016), "Deep residual learning for image
    recognition": relu(F(x) + shortcut(x)) with
    F = conv3x3-BN-ReLU-conv3x3-BN.

    `shortcut` is `nn.Identity()`, a `ZeroPadShortcut` (option A) or a
    `ProjectionShortcut` (options B and C); `None` removes the addition,
    leaving two plain layers: the plain twin of the residual network.

    Stochastic depth (Huang et al. 2016, "Deep networks with stochastic
    depth"): in training the branch F is skipped with probability
    1 - survival; at test time it is scaled by survival.
    """

    def __init__(self, in_channels, out_channels, stride=1, shortcut=None,
                 survival=1.0, activation=nn.ReLU, batch_norm=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride,
                               padding=1, bias=not batch_norm)
        self.bn1 = (nn.BatchNorm2d(out_channels) if batch_norm
                    else nn.Identity())
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1,
                               bias=not batch_norm)
        self.bn2 = (nn.BatchNorm2d(out_channels) if batch_norm
                    else nn.Identity())
        self.shortcut = shortcut
        self.survival = survival
        self.act = activation()

    def branch(self, x):
        """The residual function F."""
        return self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))

    def forward(self, x):
        if self.shortcut is None:
            return self.act(self.branch(x))
        identity = self.shortcut(x)
        if not self.training:
            return self.act(self.survival * self.branch(x) + identity)
        if torch.rand(()) < self.survival:
            return self.act(self.branch(x) + identity)
        return self.act(identity)
