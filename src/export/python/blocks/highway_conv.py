class HighwayConv(nn.Module):
    """Convolutional highway layer of Srivastava et al. (2015), "Training
    very deep networks": y = H(x) * T(x) + x * C(x) with the transform
    gate T = sigmoid(W_T x + b_T) and H = conv-BN-activation; the shape is
    kept.

    The carry gate is coupled, C = 1 - T (the paper's default), or
    independent, C = sigmoid(W_C x + b_C) with its own weights. The gate
    bias starts negative so that a new layer starts close to the identity.
    """

    def __init__(self, channels, kernel_size=3, carry="coupled",
                 gate_bias=-1.0, activation=nn.ReLU, batch_norm=True):
        super().__init__()
        padding = kernel_size // 2
        self.transform = nn.Conv2d(channels, channels, kernel_size,
                                   padding=padding, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(channels) if batch_norm else nn.Identity()
        self.gate = nn.Conv2d(channels, channels, kernel_size,
                              padding=padding)
        nn.init.constant_(self.gate.bias, gate_bias)
        self.carry = None
        if carry == "independent":
            self.carry = nn.Conv2d(channels, channels, kernel_size,
                                   padding=padding)
            nn.init.constant_(self.carry.bias, -gate_bias)
        self.act = activation()

    def forward(self, x):
        h = self.act(self.bn(self.transform(x)))
        t = torch.sigmoid(self.gate(x))
        c = 1 - t if self.carry is None else torch.sigmoid(self.carry(x))
        return h * t + x * c
