class DenseProjection(nn.Module):
    """The shortcut of a fully connected residual block whose width changes
    (or of every block, option C): a linear layer and batch normalisation.
    """

    def __init__(self, in_features, out_features, batch_norm=True):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features,
                                bias=not batch_norm)
        self.bn = (nn.BatchNorm1d(out_features) if batch_norm
                   else nn.Identity())

    def forward(self, x):
        return self.bn(self.linear(x))
