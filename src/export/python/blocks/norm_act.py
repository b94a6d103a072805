class NormAct(nn.Module):
    """Batch normalisation and activation with no weight layer: the final
    BN-ReLU of pre-activation ResNets (He et al. 2016b) and DenseNets
    (Huang et al. 2017). `flat` picks 1-d normalisation for flat features.
    """

    def __init__(self, channels, activation=nn.ReLU, batch_norm=True,
                 flat=False):
        super().__init__()
        norm = nn.BatchNorm1d if flat else nn.BatchNorm2d
        self.bn = norm(channels) if batch_norm else nn.Identity()
        self.act = activation()

    def forward(self, x):
        return self.act(self.bn(x))
