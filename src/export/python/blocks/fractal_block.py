class FractalBlock(nn.Module):
    """Fractal block of Larsson et al. (2017), "FractalNet: ultra-deep neural
    networks without residuals": f_1(z) = conv(z) and
    f_{C+1}(z) = join(f_C(f_C(z)), conv(z)), where conv is
    conv3x3-BN-ReLU (`ConvLayer`) and the join is the element-wise mean of
    its inputs. As in the paper's figure, nested joins at the same depth
    merge into one join over every column that reaches it.

    Drop-path in training: local drop-path drops each join input with
    probability `local_drop`, keeping at least one; global drop-path (the
    network draws it per batch) keeps one whole column, passed as `column`.
    In evaluation every column is joined, or `column=k` evaluates column k
    (1 = the shallowest) alone.
    """

    def __init__(self, in_channels, filters, columns, local_drop=0.15,
                 activation=nn.ReLU, batch_norm=True):
        super().__init__()
        self.columns = columns
        self.local_drop = local_drop
        self.unit = ConvLayer(in_channels, filters, 3, 1, activation,
                              batch_norm)
        self.deep = nn.ModuleList()
        if columns > 1:
            self.deep.append(FractalBlock(in_channels, filters, columns - 1,
                                          local_drop, activation, batch_norm))
            self.deep.append(FractalBlock(filters, filters, columns - 1,
                                          local_drop, activation, batch_norm))

    def join(self, inputs):
        """Mean of the inputs local drop-path keeps (all in evaluation)."""
        if self.training and self.local_drop > 0 and len(inputs) > 1:
            keep = torch.rand(len(inputs)) >= self.local_drop
            if not keep.any():
                keep[torch.randint(len(inputs), ())] = True
            inputs = [x for x, kept in zip(inputs, keep) if kept]
        return sum(inputs) / len(inputs)

    def column_outputs(self, z):
        """The outputs of every column reaching the final join, shallowest
        first."""
        shallow = self.unit(z)
        if not self.deep:
            return [shallow]
        first, second = self.deep
        inner = self.join(first.column_outputs(z))
        return [shallow] + second.column_outputs(inner)

    def single_column(self, z, k):
        """Column k alone: 2^(k-1) convolutions in a row."""
        if k == 1:
            return self.unit(z)
        first, second = self.deep
        return second.single_column(first.single_column(z, k - 1), k - 1)

    def forward(self, z, column=None):
        if column is not None:
            return self.single_column(z, min(max(column, 1), self.columns))
        return self.join(self.column_outputs(z))
