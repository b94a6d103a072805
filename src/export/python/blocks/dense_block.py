class DenseUnit(nn.Module):
    """One layer of a dense block (Huang et al. 2017, "Densely connected
    convolutional networks"): BN-ReLU-conv3x3 making `growth_rate` new
    maps. DenseNet-B puts BN-ReLU-conv1x1 to 4 * growth_rate maps first.
    """

    def __init__(self, in_channels, growth_rate, bottleneck=False,
                 activation=nn.ReLU, batch_norm=True):
        super().__init__()
        width = 4 * growth_rate if bottleneck else in_channels
        self.bn1 = nn.BatchNorm2d(in_channels) if batch_norm else nn.Identity()
        self.conv1 = None
        self.bn2 = nn.Identity()
        if bottleneck:
            self.conv1 = nn.Conv2d(in_channels, width, 1, bias=not batch_norm)
            if batch_norm:
                self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, growth_rate, 3, padding=1,
                               bias=not batch_norm)
        self.act = activation()

    def forward(self, x):
        out = self.act(self.bn1(x))
        if self.conv1 is not None:
            out = self.act(self.bn2(self.conv1(out)))
        return self.conv2(out)


class DenseBlock(nn.Module):
    """Dense block of Huang et al. (2017), "Densely connected convolutional
    networks": each layer receives the concatenation of every earlier
    feature map of the block and adds `growth_rate` channels.
    """

    def __init__(self, in_channels, layers, growth_rate, bottleneck=False,
                 activation=nn.ReLU, batch_norm=True):
        super().__init__()
        self.units = nn.ModuleList(
            DenseUnit(in_channels + i * growth_rate, growth_rate, bottleneck,
                      activation, batch_norm)
            for i in range(layers))

    def forward(self, x):
        for unit in self.units:
            x = torch.cat([x, unit(x)], 1)
        return x
