class BranchScalars(nn.Module):
    """How a residual branch started in depthlab, where that left learnable
    scalars in the block.

    "skipinit" (SkipInit, De & Smith 2020; ReZero, Bachlechner et al. 2020):
    a scalar `alpha`, trained from 0, multiplies the branch F.

    "fixup" (Zhang et al. 2019, "Fixup initialization"), for blocks without
    normalisation: `fixup_bias` holds a scalar bias before each weight layer
    of F (index 2i) and one after it (2i + 1: before the activation, or
    after the multiplier `fixup_scale` for the last layer); shortcuts that
    change the shape see x + fixup_bias[0].
    """

    def __init__(self, init, layers):
        super().__init__()
        self.init = init
        self.layers = layers
        if init == "skipinit":
            self.alpha = nn.Parameter(torch.zeros(1))
        elif init == "fixup":
            self.fixup_bias = nn.Parameter(torch.zeros(2 * layers))
            self.fixup_scale = nn.Parameter(torch.ones(1))
        else:
            raise ValueError(f"unknown residual init {init!r}")

    @property
    def fixup(self):
        return self.init == "fixup"

    def bias(self, x, i):
        """x plus Fixup's scalar bias number i (x itself otherwise)."""
        return x + self.fixup_bias[i] if self.fixup else x

    def end(self, h):
        """The last weight layer's output as it leaves a Fixup branch."""
        return self.bias(h * self.fixup_scale, 2 * self.layers - 1)

    def weigh(self, f):
        """The branch as it reaches the addition (alpha * F for SkipInit)."""
        return f * self.alpha if self.init == "skipinit" else f


def fixup_branch(block, x, layers):
    """F(x) of a Fixup block: `conv{i}` / `linear{i}` with the scalar biases
    around each layer and the activation between them."""
    s = block.scalars
    for i in range(1, layers + 1):
        layer = getattr(block, f"conv{i}", None) or getattr(block,
                                                            f"linear{i}")
        x = layer(s.bias(x, 2 * i - 2))
        x = block.act(s.bias(x, 2 * i - 1)) if i < layers else s.end(x)
    return x


def join(block, x, branch_input):
    """shortcut(x) + F for a residual block with `shortcut`, `survival`
    (stochastic depth, Huang et al. 2016: F skipped in training with
    probability 1 - survival, scaled by survival at test time) and
    optional `scalars`; the shortcut of a Fixup block that changes the
    shape sees x + fixup_bias[0]."""
    s = block.scalars
    shifted = (s is not None and s.fixup
               and not isinstance(block.shortcut, nn.Identity))
    identity = block.shortcut(s.bias(x, 0) if shifted else x)

    def weighed():
        f = block.branch(branch_input)
        return f if s is None else s.weigh(f)

    if not block.training:
        return block.survival * weighed() + identity
    if torch.rand(()) < block.survival:
        return weighed() + identity
    return identity
