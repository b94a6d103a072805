class ConvLayer(nn.Module):
    """Convolution, batch normalisation, activation.

    One layer of a plain network (He et al. 2016, "Deep residual learning
    for image recognition") and the unit of every fractal column (Larsson
    et al. 2017). "Same" padding keeps the map's size at stride 1; without
    batch normalisation the convolution has a bias instead.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1,
                 activation=nn.ReLU, batch_norm=True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              padding=kernel_size // 2, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.act = activation()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))
