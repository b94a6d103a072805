class HighwayDense(nn.Module):
    """Fully connected highway layer of Srivastava et al. (2015), "Training
    very deep networks": y = H(x) * T(x) + x * C(x) with the transform
    gate T = sigmoid(W_T x + b_T) and H = linear-BN-activation, on the
    flattened input; the width is kept.

    The carry gate is coupled, C = 1 - T (the paper's default), or
    independent, C = sigmoid(W_C x + b_C) with its own weights. The gate
    bias starts negative so that a new layer starts close to the identity.
    """

    def __init__(self, width, carry="coupled", gate_bias=-1.0,
                 activation=nn.ReLU, batch_norm=True):
        super().__init__()
        self.transform = nn.Linear(width, width, bias=not batch_norm)
        self.bn = nn.BatchNorm1d(width) if batch_norm else nn.Identity()
        self.gate = nn.Linear(width, width)
        nn.init.constant_(self.gate.bias, gate_bias)
        self.carry = None
        if carry == "independent":
            self.carry = nn.Linear(width, width)
            nn.init.constant_(self.carry.bias, -gate_bias)
        self.act = activation()

    def forward(self, x):
        x = torch.flatten(x, 1)
        h = self.act(self.bn(self.transform(x)))
        t = torch.sigmoid(self.gate(x))
        c = 1 - t if self.carry is None else torch.sigmoid(self.carry(x))
        return h * t + x * c
