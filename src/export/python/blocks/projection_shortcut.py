class ProjectionShortcut(nn.Module):
    """Options B and C of He et al. (2016): a 1x1 convolution (and batch
    normalisation) that gives the input the residual branch's shape.
    Option B projects only where a block changes the shape, option C in
    every block.
    """

    def __init__(self, in_channels, out_channels, stride=1, batch_norm=True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride,
                              bias=not batch_norm)
        self.bn = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()

    def forward(self, x):
        return self.bn(self.conv(x))
