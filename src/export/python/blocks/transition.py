class Transition(nn.Module):
    """DenseNet transition (Huang et al. 2017, "Densely connected
    convolutional networks"): BN-ReLU-conv1x1 to `out_channels` (the
    compression), then 2x2 average pooling.
    """

    def __init__(self, in_channels, out_channels, activation=nn.ReLU,
                 batch_norm=True):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels) if batch_norm else nn.Identity()
        self.conv = nn.Conv2d(in_channels, out_channels, 1,
                              bias=not batch_norm)
        self.act = activation()
        self.pool = nn.AvgPool2d(2)

    def forward(self, x):
        return self.pool(self.conv(self.act(self.bn(x))))
