class DenseLayer(nn.Module):
    """Fully connected layer, batch normalisation, activation.

    A layer of the plain deep networks of Glorot & Bengio (2010) and of
    Srivastava et al.'s (2015) plain baseline. The input is flattened
    first; without batch normalisation the layer has a bias instead.
    """

    def __init__(self, in_features, units, activation=nn.ReLU,
                 batch_norm=True):
        super().__init__()
        self.linear = nn.Linear(in_features, units, bias=not batch_norm)
        self.bn = nn.BatchNorm1d(units) if batch_norm else nn.Identity()
        self.act = activation()

    def forward(self, x):
        return self.act(self.bn(self.linear(torch.flatten(x, 1))))
